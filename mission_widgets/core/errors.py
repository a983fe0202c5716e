"""Exceptions of the engine and the classification of step errors.

Errors are classified into ``timeout``, ``permission``, ``missing_resource`` and
``execution_error`` so that retries, stall policies and the panel can talk about them
without knowing every library's exception types (openai, httpx, OSError ...).
"""

from __future__ import annotations

import re


class MissionError(Exception):
    """Base class of mission_widgets errors."""


class MissionValidationError(MissionError, ValueError):
    """A mission or step definition is invalid (names the culprit)."""


class PlanError(MissionError, ValueError):
    """The model's plan could not be parsed or validated; quotes what was wrong."""


class ModelResolutionError(MissionError, LookupError):
    """A model spec such as ``"provider:name"`` cannot be resolved."""


class CheckpointError(MissionError, ValueError):
    """A saved mission or session file is corrupt, truncated or of the wrong kind."""


class CheckpointIdError(CheckpointError, MissionValidationError):
    """A saved mission's ``"id"`` is not a valid mission id: both a bad file (naming it) and
    an invalid id (naming the value), so either ``except`` catches it."""


class StepTimeoutError(MissionError, TimeoutError):
    """A step attempt ran longer than its ``timeout_secs``."""


class StepRaisedBaseException(MissionError):
    """A step's executor raised a BaseException (SystemExit, KeyboardInterrupt, ...).

    The mission ends ``failed`` at once; ``error_type`` names the exception's class.
    """

    def __init__(self, step_id: str, error: BaseException) -> None:
        super().__init__(f"step {step_id!r} raised {error!r}")
        self.step_id = step_id
        self.error = error
        self.error_type = type(error).__name__


class DecisionConflictError(MissionError):
    """``decide()`` came too late: the question was already answered (by a person in another
    process, or by the timeout's fallback); the message names who decided what."""


class MissionCancelled(MissionError):
    """Raised inside the engine when a mission was asked to stop."""


ERROR_TYPES = ("timeout", "permission", "missing_resource", "execution_error", "budget_exceeded")

_PERMISSION = re.compile(
    r"\b(401|403|unauthori[sz]ed|forbidden|permission denied|access denied|invalid api key)\b",
    re.IGNORECASE,
)
_MISSING = re.compile(r"\b(404|not found|no such file|does not exist)\b", re.IGNORECASE)
_TIMEOUT = re.compile(r"\b(timed out|timeout)\b", re.IGNORECASE)


def classify_error(error: BaseException) -> str:
    """Map an exception to one of :data:`ERROR_TYPES`.

    Looks at the exception type first (stdlib and, by class name, HTTP client libraries),
    then at an HTTP ``status_code`` attribute, then at the message.
    """
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, PermissionError):
        return "permission"
    if isinstance(error, FileNotFoundError | ModuleNotFoundError | LookupError):
        return "missing_resource"
    names = {cls.__name__ for cls in type(error).__mro__}
    if "BudgetExceeded" in names:  # a model call not made (core.budget)
        return "budget_exceeded"
    if names & {"APITimeoutError", "ReadTimeout", "ConnectTimeout", "TimeoutException"}:
        return "timeout"
    if names & {"AuthenticationError", "PermissionDeniedError"}:
        return "permission"
    if "NotFoundError" in names:
        return "missing_resource"
    status = getattr(error, "status_code", None)
    if status in (401, 403):
        return "permission"
    if status == 404:
        return "missing_resource"
    message = str(error)
    if _TIMEOUT.search(message):
        return "timeout"
    if _PERMISSION.search(message):
        return "permission"
    if _MISSING.search(message):
        return "missing_resource"
    return "execution_error"


def describe_error(error: BaseException) -> str:
    """One line naming the exception type and its message."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
