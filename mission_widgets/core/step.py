"""MissionStep: one unit of work of a mission, run one attempt at a time."""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable, Mapping

from .asyncrun import settle
from .errors import MissionValidationError, ModelResolutionError
from .planning import step_prompt
from .status import STEP_STATUSES, StepStatus
from .unpickling import upgraded_state
from .values import LargeValue, LoadedWhenRead

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
    """Call an executor in whichever of the two supported shapes it has; an ``async``
    executor's coroutine runs to its end on the package's event loop (see :mod:`.asyncrun`)."""
    run = getattr(executor, "run", None)
    if callable(run) and not isinstance(executor, _ROUTINES):
        if context:
            task = f"{task}\n\n{context}"
        return settle(run(task, session=session, model=model))
    return settle(executor(task, session, context))


#: Attributes that older releases pickled under another name (properties since).
_RENAMED = {"status": "_status", "progress": "_progress", "result": "_result"}


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
        # Status and progress are properties: the owning mission's tally follows them.
        self._tally: StepTally | None = None
        self._status = StepStatus.PENDING
        self._progress = 0.0
        #: The most progress any attempt of this step reached: its share of the mission's
        #: progress while it is not done (a retry does not take it back).
        self.progress_high = 0.0
        self.retry_count = 0
        self._result: Any = None
        #: Why the result is not what the executor returned (kept as its repr), else None.
        self.result_note: str | None = None
        self.error_history: list[dict[str, Any]] = []
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
        reply = settle(resolved.generate(step_prompt(goal, self.id, self.description, context)))
        return reply if isinstance(reply, str) else str(reply)

    # -- state the mission's tally follows ---------------------------------------------------

    def share(self) -> float:
        """This step's part of its mission's progress, 0..1: whole when done or skipped, else
        the most any attempt reached."""
        if self._status in (StepStatus.DONE, StepStatus.SKIPPED):
            return 1.0
        return min(max(self.progress_high, 0.0), 1.0)

    @property
    def status(self) -> StepStatus:
        return self._status

    @status.setter
    def status(self, value: StepStatus | str) -> None:
        new = StepStatus(value)
        old, old_share = self._status, self.share()
        self._status = new
        if self._tally is not None:
            self._tally.changed(old, new, self.share() - old_share)

    @property
    def progress(self) -> float:
        """Progress of the current attempt, 0..1 (as the step reports it)."""
        return self._progress

    @progress.setter
    def progress(self, value: float) -> None:
        self._progress = value
        if value > self.progress_high:
            old_share = self.share()
            self.progress_high = value
            if self._tally is not None:
                self._tally.changed(self._status, self._status, self.share() - old_share)

    @property
    def skipped(self) -> bool:
        """True when the step failed and the mission went on without it: its status is
        ``skipped`` (setting True sets that status; False takes a skipped step back to
        ``pending``)."""
        return self._status == StepStatus.SKIPPED

    @skipped.setter
    def skipped(self, value: bool) -> None:
        if value:
            self.status = StepStatus.SKIPPED
        elif self._status == StepStatus.SKIPPED:
            self.status = StepStatus.PENDING

    #: The result; a large one (see :mod:`.values`) is read from its file when asked.
    result = LoadedWhenRead("_result")

    def stored_result(self) -> Any:
        """The result as held: a :class:`LargeValue` reference is not loaded."""
        return self._result

    def result_for_context(self) -> Any:
        """The result as later steps are told it: a large one by its summary."""
        value = self._result
        return value.describe() if isinstance(value, LargeValue) else value

    @property
    def last_error(self) -> str | None:
        for entry in reversed(self.error_history):
            if entry.get("error_type") != "analysis":  # explanations are not errors
                return entry["error"]
        return None

    @property
    def failed_attempts(self) -> int:
        """How many attempts failed (explanations in the error history are not attempts)."""
        return sum(e.get("error_type") != "analysis" for e in self.error_history)

    @property
    def is_finished(self) -> bool:
        return self.status in (StepStatus.DONE, StepStatus.FAILED, StepStatus.SKIPPED)

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

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Pickled by an older release (see .unpickling): status, progress and result were
        # plain attributes, and "skipped" a flag beside the status.
        skipped = bool(state.pop("skipped", False)) | bool(state.pop("_skipped", False))
        state.setdefault("progress_high", state.get("progress", state.get("_progress", 0.0)))
        state = upgraded_state(state, _RENAMED, MissionStep, "template", "a template step")
        state["_status"] = StepStatus.SKIPPED if skipped else StepStatus(state["_status"])
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"MissionStep({self.id!r}, status={str(self.status)!r}, retries={self.retry_count})"


class StepTally:
    """Counts of a mission's steps by status and the sum of their progress shares.

    Kept current by the steps themselves (O(1) per change), so a summary per event costs
    O(1) however many steps a mission has.
    """

    __slots__ = ("counts", "shares")

    def __init__(self, steps: list[MissionStep]) -> None:
        self.counts = dict.fromkeys(StepStatus, 0)
        self.shares = 0.0
        for step in steps:
            step._tally = self
            self.counts[step.status] += 1
            self.shares += step.share()

    def changed(self, old: StepStatus, new: StepStatus, share_delta: float) -> None:
        if old is not new:
            self.counts[old] -= 1
            self.counts[new] += 1
        self.shares += share_delta
