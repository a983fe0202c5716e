"""StallPolicy: what a mission does when a step keeps failing or times out."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .checks import number_option
from .errors import MissionValidationError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TOOL_FAILURE_ACTIONS = ("inject_error_and_retry", "retry", "fail")
STEP_TIMEOUT_ACTIONS = ("skip_or_replan", "retry", "skip", "abort")
MAX_RETRIES_ACTIONS = ("escalate", "skip", "abort", "ask")
#: What happens when nobody answers within ``decision_timeout_secs``.
DECISION_FALLBACKS = ("abort", "skip", "retry")


class Resolve:
    """An ``escalate_fn`` answer that resolves a failed step: ``return Resolve("the answer")``.

    The step ends ``done`` with ``result`` as its result, and the steps after it run.
    """

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resolve) and other.result == self.result

    def __repr__(self) -> str:
        return f"Resolve({self.result!r})"


#: The strings ``escalate_fn`` may return to change what happens (besides a Resolve).
ESCALATION_DIRECTIVES = ("retry", "skip", "abort")

_FIELDS = (
    "on_tool_failure",
    "on_step_timeout",
    "on_max_retries",
    "escalate_fn",
    "max_escalations",
    "decision_timeout_secs",
    "decision_fallback",
)


class StallPolicy:
    """How failures are handled.

    on_tool_failure
        ``inject_error_and_retry`` (retry with the earlier errors in the step's context),
        ``retry`` (retry without them) or ``fail`` (no retries).
    on_step_timeout
        ``skip_or_replan`` (retry with the timeout in the context so the executor or model can
        take a cheaper route; once retries are exhausted, skip the step instead of escalating),
        ``retry`` (a timeout is a failure like any other), ``skip`` (skip at the first
        timeout) or ``abort`` (fail the mission at the first timeout).
    on_max_retries
        ``escalate`` (call ``escalate_fn(mission, step)``; unless it resolves the step, the
        mission stalls and ``on_mission_stall`` fires), ``skip`` (the step fails, dependants
        still run), ``abort`` (the mission fails at once) or ``ask`` (wait for a person's
        decision, see :mod:`.decisions`).
    decision_timeout_secs, decision_fallback
        With ``ask``: after this many seconds without an answer (None: wait for ever), the
        fallback (``abort``, ``skip`` or ``retry``) applies.
    escalate_fn
        ``escalate_fn(mission, step)`` changes the outcome only by an explicit directive, as in
        aisdk: ``"retry"`` (run the step again with fresh retries, at most ``max_escalations``
        times), ``"skip"``, ``"abort"``, or :class:`Resolve` ``(result)`` (the step is done with
        that result: a human answered). Anything else (None, the step id, any other value) is
        ignored: the step stays failed and the mission stalls.
    """

    def __init__(
        self,
        on_tool_failure: str = "inject_error_and_retry",
        on_step_timeout: str = "skip_or_replan",
        on_max_retries: str = "escalate",
        escalate_fn: Callable[[Any, Any], Any] | None = None,
        max_escalations: int = 1,
        decision_timeout_secs: float | None = None,
        decision_fallback: str = "abort",
    ) -> None:
        self.on_tool_failure = on_tool_failure
        self.on_step_timeout = on_step_timeout
        self.on_max_retries = on_max_retries
        self.escalate_fn = escalate_fn
        self.max_escalations = max_escalations
        self.decision_timeout_secs = decision_timeout_secs
        self.decision_fallback = decision_fallback
        for name, allowed in (
            ("decision_fallback", DECISION_FALLBACKS),
            ("on_tool_failure", TOOL_FAILURE_ACTIONS),
            ("on_step_timeout", STEP_TIMEOUT_ACTIONS),
            ("on_max_retries", MAX_RETRIES_ACTIONS),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise MissionValidationError(
                    f"StallPolicy.{name}={value!r} is not one of {', '.join(allowed)}"
                )
        if self.escalate_fn is not None and not callable(self.escalate_fn):
            raise MissionValidationError(
                f"StallPolicy.escalate_fn must be callable, got {type(self.escalate_fn).__name__}"
            )
        number_option(
            "StallPolicy.decision_timeout_secs",
            decision_timeout_secs,
            allow_none=True,
            error=MissionValidationError,
        )
        if not isinstance(self.max_escalations, int) or self.max_escalations < 0:
            raise MissionValidationError(
                f"StallPolicy.max_escalations must be an int >= 0, got {self.max_escalations!r}"
            )

    @classmethod
    def coerce(cls, value: StallPolicy | Mapping[str, Any] | None) -> StallPolicy:
        """Accept a StallPolicy, a dict of its fields, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            known = set(_FIELDS)
            unknown = sorted(set(value) - known)
            if unknown:
                raise MissionValidationError(
                    f"unknown stall policy field(s) {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(sorted(known))}"
                )
            return cls(**value)
        raise MissionValidationError(
            f"stall_policy must be a StallPolicy or a dict, got {type(value).__name__}"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StallPolicy):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in _FIELDS)
        return f"StallPolicy({args})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "on_tool_failure": self.on_tool_failure,
            "on_step_timeout": self.on_step_timeout,
            "on_max_retries": self.on_max_retries,
            "max_escalations": self.max_escalations,
            "decision_timeout_secs": self.decision_timeout_secs,
            "decision_fallback": self.decision_fallback,
        }
