"""MissionStep: one unit of work of a mission, run one attempt at a time."""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable, Mapping

from .errors import MissionValidationError, ModelResolutionError
from .planning import step_prompt
from .status import STEP_STATUSES, StepStatus

__all__ = ["STEP_STATUSES", "MissionStep", "call_executor", "check_executor"]

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def check_executor(executor: Any, where: str) -> None:
    """An executor is a callable ``(task, session, context)`` or an object with ``.run``."""
    if executor is None or callable(executor) or callable(getattr(executor, "run", None)):
        return
    raise MissionValidationError(
        f"{where}: executor must be callable (task, session, context) or have a "
        f".run(task, session=..., model=...) method; got {type(executor).__name__}"
    )


_ROUTINES = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)


def call_executor(executor: Any, task: str, session: Any, model: Any, context: str | None) -> Any:
    """Call an executor in whichever of the two supported shapes it has."""
    run = getattr(executor, "run", None)
    if callable(run) and not isinstance(executor, _ROUTINES):
        if context:
            task = f"{task}\n\n{context}"
        return run(task, session=session, model=model)
    return executor(task, session, context)


class MissionStep:
    """A step: a description, an optional executor, retries, a timeout and dependencies.

    ``run(session, model, context)`` performs one attempt and raises what the executor
    raises; retries, timeouts and events are the mission's business.
    """

    def __init__(
        self,
        id: str,
        description: str,
        executor: Callable | Any | None = None,
        max_retries: int = 2,
        timeout_secs: float | None = None,
        parallel: bool = False,
        depends_on: list[str] | str | None = None,
    ) -> None:
        if not isinstance(id, str) or not id.strip():
            raise MissionValidationError(f"step id must be a non-empty string, got {id!r}")
        where = f"step {id!r}"
        if not isinstance(description, str) or not description.strip():
            raise MissionValidationError(f"{where}: description must be a non-empty string")
        check_executor(executor, where)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise MissionValidationError(
                f"{where}: max_retries must be an int >= 0, got {max_retries!r}"
            )
        if timeout_secs is not None and (
            isinstance(timeout_secs, bool)
            or not isinstance(timeout_secs, int | float)
            or not math.isfinite(timeout_secs)
            or timeout_secs <= 0
        ):
            raise MissionValidationError(
                f"{where}: timeout_secs must be a positive number or None, got {timeout_secs!r}"
            )
        if depends_on is None:
            depends_on = []
        elif isinstance(depends_on, str):
            depends_on = [depends_on]
        depends_on = list(depends_on)
        for dep in depends_on:
            if not isinstance(dep, str):
                raise MissionValidationError(
                    f"{where}: depends_on must list step ids (strings), got {dep!r}"
                )
        self.id = id
        self.description = description
        self.executor = executor
        self.max_retries = max_retries
        self.timeout_secs = timeout_secs
        self.parallel = bool(parallel)
        self.depends_on: list[str] = depends_on
        self.status = StepStatus.PENDING
        self.retry_count = 0
        self.result: Any = None
        self.error_history: list[dict[str, Any]] = []
        self.progress = 0.0
        self.skipped = False
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.escalations = 0
        #: The exception of the last failed attempt (not saved; hooks receive it).
        self.last_exception: BaseException | None = None

    def run(
        self,
        session: Any,
        model: Any = None,
        context: str | None = None,
        *,
        goal: str | None = None,
        executor: Any = None,
    ) -> Any:
        """One attempt. ``executor`` overrides the step's own (the mission's default)."""
        chosen = self.executor if self.executor is not None else executor
        if chosen is not None:
            return call_executor(chosen, self.description, session, model, context)
        from .models import resolve_model

        resolved = resolve_model(model)
        if resolved is None:
            raise ModelResolutionError(
                f"step {self.id!r} has no executor and no model to execute it"
            )
        reply = resolved.generate(step_prompt(goal, self.id, self.description, context))
        return reply if isinstance(reply, str) else str(reply)

    @property
    def last_error(self) -> str | None:
        return self.error_history[-1]["error"] if self.error_history else None

    @property
    def is_finished(self) -> bool:
        return self.status in (StepStatus.DONE, StepStatus.FAILED)

    def spec(self) -> dict[str, Any]:
        """The static definition (what a plan or a save file says about the step)."""
        return {
            "id": self.id,
            "description": self.description,
            "max_retries": self.max_retries,
            "timeout_secs": self.timeout_secs,
            "parallel": self.parallel,
            "depends_on": list(self.depends_on),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], executor: Any = None) -> MissionStep:
        """A step from a :meth:`spec` dict (an event, a save file); missing fields default."""
        return cls(
            spec["id"],
            spec["description"],
            executor=executor,
            max_retries=spec.get("max_retries", 2),
            timeout_secs=spec.get("timeout_secs"),
            parallel=spec.get("parallel", False),
            depends_on=spec.get("depends_on") or [],
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["last_exception"] = None  # may not pickle; the error history has its text
        return state

    def __repr__(self) -> str:
        return f"MissionStep({self.id!r}, status={str(self.status)!r}, retries={self.retry_count})"
