"""Running a mission's steps: DAG scheduling, attempts, retries, timeouts and escalation.

:class:`StepRunner` does one run of a mission's steps. Sequential steps run in the mission's
own thread; ready ``parallel=True`` steps run together on a bounded pool of threads
(``Mission.max_parallel``). Scheduling is linear in the number of steps: each step waits on
a counter of unfinished dependencies. What a step attempt is told is :mod:`.context`; a
person's decision (``on_max_retries="ask"``) is :mod:`.decisions`.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import queue
import threading
import time
import warnings

from .asyncrun import attempt_deadline
from .budget import BudgetExceeded, guard_for, raise_budget, release_calls
from .checks import bound_text
from .context import preview, step_context
from .decisions import ask_for_decision
from .errors import (
    MissionCancelled,
    MissionValidationError,
    StepRaisedBaseException,
    classify_error,
    describe_error,
)
from .events import StepContext, reset_step_context, set_step_context
from .planning import validate_dag
from .policy import ESCALATION_DIRECTIVES, Resolve
from .status import MissionStatus, StepStatus, stalled_error
from .timeouts import call_with_timeout
from .tracecontext import enter_trace, leave_trace
from .values import savable

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .contracts import MissionLike
    from .step import MissionStep

#: Longest wait between retries, in seconds (before the backoff factor).
MAX_BACKOFF_SECS = 30.0
#: The result a step skipped by a person's decision gets (aisdk's wording).
SKIPPED_RESULT = "[SKIPPED: user decision]"
#: Step statuses a run does not repeat: what is done or was skipped stays so.
_OVER = (StepStatus.DONE, StepStatus.SKIPPED)


def retry_delay(attempt: int, factor: float) -> float:
    """Seconds to wait after failed attempt ``attempt``: ``min(2**(n-1), 30) * factor``."""
    return min(2.0 ** (attempt - 1), MAX_BACKOFF_SECS) * factor


class _Stop(Exception):
    """Ends the scheduling loop: the mission stalls or fails (``kind``) at ``step``."""

    def __init__(self, kind: str, step: MissionStep, error: str) -> None:
        super().__init__(error)
        self.kind, self.step, self.error = kind, step, error


class StepRunner:
    """One run of a mission's steps, to ``succeeded``, ``failed`` or ``stalled``."""

    def __init__(self, mission: MissionLike) -> None:
        self.mission = mission
        self.policy = mission.stall_policy
        self.emit = mission._emit
        self.cancel = mission._cancel
        steps = mission.steps or []
        self.by_id = {step.id: step for step in steps}
        order = validate_dag((s.id, s.depends_on) for s in steps)
        for step in steps:
            if step.status not in _OVER:
                if step.status == StepStatus.FAILED:
                    step.retry_count = 0
                step.status, step.progress = StepStatus.PENDING, 0.0
        # A step is ready when all its dependencies have finished (done, or skipped).
        self.unfinished_deps = {
            s.id: sum(self.by_id[d].status not in _OVER for d in s.depends_on) for s in steps
        }
        self.dependents: dict[str, list[str]] = {s.id: [] for s in steps}
        for s in steps:
            for dep in s.depends_on:
                self.dependents[dep].append(s.id)
        self.ready_parallel: collections.deque[MissionStep] = collections.deque()
        self.ready_sequential: collections.deque[MissionStep] = collections.deque()
        self.n_left = 0
        for step_id in order:
            step = self.by_id[step_id]
            if step.status == StepStatus.PENDING:
                self.n_left += 1
                if self.unfinished_deps[step_id] == 0:
                    self._queue(step)
        #: Steps whose next round is one attempt with their failures in the context (a
        #: person said "retry").
        self.one_more: set[str] = set()

    def _queue(self, step: MissionStep, front: bool = False) -> None:
        ready = self.ready_parallel if step.parallel else self.ready_sequential
        if front:
            ready.appendleft(step)
        else:
            ready.append(step)

    def _finished(self, step: MissionStep) -> None:
        """``step`` is over for this run: its dependents may become ready."""
        self.n_left -= 1
        for dep_id in self.dependents[step.id]:
            self.unfinished_deps[dep_id] -= 1
            if self.unfinished_deps[dep_id] == 0:
                self._queue(self.by_id[dep_id])

    # -- scheduling -------------------------------------------------------------------------------

    def run(self) -> None:
        """Run the steps; set the mission's status (and error) from how they ended."""
        mission = self.mission
        try:
            self._schedule()
        except _Stop as stop:
            mission.status = MissionStatus.STALLED if stop.kind == "stall" else MissionStatus.FAILED
            mission.error = stop.error
            return
        if self.cancel.is_set():
            raise MissionCancelled()
        if self.n_left:  # only reachable if dependencies never finished
            raise MissionValidationError(f"{self.n_left} step(s) could not run")
        skipped = [s for s in mission.steps or [] if s.status == StepStatus.SKIPPED]
        mission.status = MissionStatus.SUCCEEDED
        if skipped:
            mission.error = "skipped failed step(s): " + ", ".join(repr(s.id) for s in skipped)

    def _schedule(self) -> None:
        running: set[str] = set()
        finished: queue.SimpleQueue[tuple[MissionStep, str | BaseException]] = queue.SimpleQueue()
        stop: _Stop | None = None
        pool: DaemonPool | None = None

        def run_on_pool(step: MissionStep, context: contextvars.Context) -> None:
            try:
                finished.put((step, context.run(self._run_step, step)))
            except BaseException as exc:  # handed to the scheduling thread
                finished.put((step, exc))

        try:
            while True:
                if stop is None and not self.cancel.is_set():
                    if not running and self.ready_sequential and not self.ready_parallel:
                        # Sequential steps run here, in the mission's own thread.
                        step = self.ready_sequential.popleft()
                        try:
                            self._settle(step, self._run_step(step))
                        except _Stop as exc:
                            stop = exc
                        continue
                    if all(self.by_id[i].parallel for i in running):
                        room = self.mission.max_parallel - len(running)
                        while room > 0 and self.ready_parallel:
                            if pool is None:
                                pool = DaemonPool(self.mission.max_parallel, "mission-step")
                            step = self.ready_parallel.popleft()
                            running.add(step.id)
                            pool.submit(run_on_pool, step, contextvars.copy_context())
                            room -= 1
                if not running:
                    break
                step, outcome = finished.get()
                running.discard(step.id)
                if isinstance(outcome, BaseException):
                    while running:  # let the other parallel steps end before failing
                        other, _ = finished.get()
                        running.discard(other.id)
                    raise outcome
                try:
                    self._settle(step, outcome)
                except _Stop as exc:
                    stop = stop or exc
        finally:
            if pool is not None:
                pool.close()
        if stop is not None:
            raise stop

    def _settle(self, step: MissionStep, outcome: str) -> None:
        """Act on a step's outcome; raise :class:`_Stop` to end the mission."""
        mission = self.mission
        if outcome == "escalate":
            outcome = self._escalate(step)
        elif outcome == "ask":
            outcome, reason = ask_for_decision(mission, step)
            if isinstance(step.last_exception, BudgetExceeded):
                if outcome == "retry_once":
                    raise_budget(mission, step.last_exception)  # "retry": it grows once more
                reason += f"; {step.last_exception}"
            if outcome == "skip_decided":
                self.skip_by_decision(step)
                outcome = "done"
            elif outcome == "abort":
                mission.checkpoint_step(step)
                raise _Stop("abort", step, f"aborted at step {step.id!r} ({reason})")
        mission.checkpoint_step(step)
        if outcome in ("done", "resolved", "skip"):
            if outcome == "skip":
                step.skipped = True
                self.emit("step_skipped", step_id=step.id, error_message=step.last_error)
            self._finished(step)
            return
        if outcome == "cancelled":
            return
        if outcome in ("retry", "retry_once"):
            step.status, step.retry_count, step.progress = StepStatus.PENDING, 0, 0.0
            if outcome == "retry_once":
                self.one_more.add(step.id)
            self._queue(step, front=True)
            return
        if outcome == "abort":
            raise _Stop("abort", step, f"aborted at step {step.id!r}: {step.last_error}")
        # "ask" where nobody can answer says so, and how to give an answer.
        why = mission.no_answer_reason or "no escalate_fn resolved it"
        error = stalled_error(step.id, step.failed_attempts, why)
        mission.no_answer_reason = None
        self.emit(
            "mission_stall",
            step_id=step.id,
            reason="retries_exhausted",
            error_message=error,
            last_error=step.last_error,
        )
        raise _Stop("stall", step, error)

    def _escalate(self, step: MissionStep) -> str:
        """Ask ``escalate_fn``: "retry", "skip", "abort", "resolved" (it answered with
        :class:`Resolve`) or "stall" (no answer, or a value that is not a directive)."""
        escalate_fn = self.policy.escalate_fn
        if escalate_fn is None or step.escalations >= self.policy.max_escalations:
            return "stall"
        step.escalations += 1
        resolution = None
        try:
            resolution = escalate_fn(self.mission, step)
        except Exception as exc:
            warnings.warn(
                f"escalate_fn raised {describe_error(exc)} for step {step.id!r}",
                RuntimeWarning,
                stacklevel=3,
            )
        if isinstance(resolution, Resolve):
            directive = "resolve"
        elif isinstance(resolution, str) and resolution in ESCALATION_DIRECTIVES:
            directive = resolution
        else:  # not a directive: ignored, as aisdk ignores escalate_fn's value
            directive = "stall"
        self.emit(
            "escalation", step_id=step.id, resolution=repr(resolution)[:200], directive=directive
        )
        if not isinstance(resolution, Resolve):
            return directive
        self._succeed(step, resolution.result, resolved_by="escalation")
        return "resolved"

    # -- attempts ----------------------------------------------------------------------------

    def _execute_attempt(self, step: MissionStep, attempt: int, context: str | None) -> Any:
        mission = self.mission
        token = set_step_context(StepContext(self.emit, step, attempt, guard_for(mission)))
        traced = enter_trace(mission.id)  # an instrumented SDK's spans nest under the mission
        limit = step.timeout_secs
        deadline = attempt_deadline.set(
            None if limit is None else (time.monotonic() + limit, limit)
        )
        try:
            return step.run(
                mission.session,
                mission._active_model,
                context,
                goal=mission.goal,
                executor=mission.default_executor,
            )
        finally:
            attempt_deadline.reset(deadline)
            leave_trace(traced)
            reset_step_context(token)
            release_calls(mission)

    def _run_step(self, step: MissionStep) -> str:
        """Run a step's attempts; return "done", "skip", "abort", "escalate", "ask" or
        "cancelled"."""
        policy = self.policy
        one_more = step.id in self.one_more
        self.one_more.discard(step.id)
        if one_more:
            max_attempts = 1
        else:
            max_attempts = 1 if policy.on_tool_failure == "fail" else step.max_retries + 1
        inject = one_more or policy.on_tool_failure == "inject_error_and_retry"
        while True:
            attempt = sum(e.get("error_type") != "analysis" for e in step.error_history) + 1
            step.status = StepStatus.RUNNING if step.retry_count == 0 else StepStatus.RETRYING
            step.progress = 0.0
            step.started_at = step.started_at or time.time()
            self.emit("step_start", step_id=step.id, attempt=attempt, description=step.description)
            context = step_context(self.mission, step, with_errors=inject)
            started = time.time()
            try:
                result = call_with_timeout(
                    functools.partial(self._execute_attempt, step, attempt, context),
                    step.timeout_secs,
                )
            except Exception as exc:
                outcome = self._attempt_failed(step, exc, attempt, started, max_attempts)
                if outcome is None:
                    continue
                return outcome
            except BaseException as exc:  # SystemExit, KeyboardInterrupt...: the mission ends
                self._record_failure(step, exc, attempt, started, type(exc).__name__)
                self._give_up(step, exc, attempt, "abort")
                raise StepRaisedBaseException(step.id, exc) from None
            self._succeed(step, result, attempt=attempt, duration=time.time() - started)
            return "done"

    def _record_failure(
        self, step: MissionStep, exc: BaseException, attempt: int, started: float, error_type: str
    ) -> str:
        failed_at = time.time()  # one time for the history and the event
        step.last_exception = exc  # for the hooks (the event carries its description)
        message = bound_text(describe_error(exc) if isinstance(exc, Exception) else repr(exc))
        trace = bounded_traceback(exc)
        step.error_history.append(
            {
                "attempt": attempt,
                "error": message,
                "error_type": error_type,
                "timestamp": failed_at,
                "traceback": trace,
            }
        )
        self.emit(
            "step_failure",
            step_id=step.id,
            attempt=attempt,
            error_type=error_type,
            error_message=message,
            traceback=trace,
            duration_ms=(failed_at - started) * 1000.0,
            timestamp=failed_at,
        )
        return message

    def _attempt_failed(
        self, step: MissionStep, exc: Exception, attempt: int, started: float, max_attempts: int
    ) -> str | None:
        """Record a failed attempt; None to try again, else the step's outcome."""
        policy = self.policy
        error_type = classify_error(exc)
        message = self._record_failure(step, exc, attempt, started, error_type)
        if isinstance(exc, BudgetExceeded):  # no retries: another call would pass it too
            return self._give_up(step, exc, attempt, self.mission.on_budget)
        timed_out = error_type == "timeout"
        if timed_out and policy.on_step_timeout in ("skip", "abort"):
            return self._give_up(step, exc, attempt, policy.on_step_timeout)
        if step.retry_count + 1 < max_attempts and not self.cancel.is_set():
            step.retry_count += 1
            delay = retry_delay(step.retry_count, self.mission.backoff_factor)
            self.emit(
                "retry_start",
                step_id=step.id,
                attempt=attempt + 1,
                error_type=error_type,
                error_message=message,
                delay_secs=delay,
            )
            if delay and self.cancel.wait(delay):
                return self._give_up(step, exc, attempt, "cancelled")
            return None
        if self.cancel.is_set():
            return self._give_up(step, exc, attempt, "cancelled")
        if timed_out and policy.on_step_timeout == "skip_or_replan":
            return self._give_up(step, exc, attempt, "skip")
        return self._give_up(step, exc, attempt, policy.on_max_retries)

    def _succeed(
        self,
        step: MissionStep,
        result: Any,
        *,
        attempt: int | None = None,
        duration: float | None = None,
        resolved_by: str | None = None,
    ) -> None:
        """The step is done with ``result`` (kept as its repr when it cannot be saved)."""
        result, note = savable(result, f"step {step.id!r}")
        step.result, step.result_note = result, note
        step.status, step.progress = StepStatus.DONE, 1.0
        step.finished_at = time.time()
        shown = preview(result)
        extra: dict[str, Any] = {"result": shown}
        if note:
            extra["result_note"] = note
        if resolved_by is None:
            self.emit(
                "step_success",
                step_id=step.id,
                attempt=attempt,
                duration_ms=None if duration is None else duration * 1000.0,
                **extra,
            )
            if attempt is not None and attempt > 1:
                self.emit("retry_success", step_id=step.id, attempt=attempt)
        else:
            extra["resolved_by"] = resolved_by
        self.emit("step_done", step_id=step.id, attempt=attempt, **extra)

    def _give_up(self, step: MissionStep, error: BaseException, attempt: int, outcome: str) -> str:
        step.status = StepStatus.FAILED
        step.finished_at = time.time()
        is_exception = isinstance(error, Exception)
        self.emit(
            "step_failed",
            step_id=step.id,
            attempt=attempt,
            error_type=classify_error(error) if is_exception else type(error).__name__,
            error_message=describe_error(error) if is_exception else repr(error),
            outcome=outcome,
        )
        return outcome

    def skip_by_decision(self, step: MissionStep) -> None:
        """A person skipped the failed step: it is done with :data:`SKIPPED_RESULT`."""
        self._succeed(step, SKIPPED_RESULT, resolved_by="decision")
        step.skipped = True  # finished, and not a success


class DaemonPool:
    """At most ``size`` daemon threads that run what is submitted, reused while work waits.

    Not a ``ThreadPoolExecutor``: the interpreter joins an executor's threads at exit, so one
    hung step would keep a kernel (or any process) from ever exiting.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._jobs.put((fn, args))
        if len(self._threads) < self._size:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args = job
            fn(*args)

    def close(self, timeout: float = 5.0) -> None:
        """End the threads; called when no work is left, so each ends at once (waited for
        up to ``timeout``, so a finished mission leaves no thread behind)."""
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


#: Longest traceback kept with a failed attempt (its end: where it was raised).
TRACEBACK_CHARS = 4000


def bounded_traceback(exc: BaseException) -> str | None:
    """The traceback of ``exc`` as text, its last TRACEBACK_CHARS characters (None when it
    has none, as for an error made rather than raised)."""
    if exc.__traceback__ is None:
        return None
    import traceback  # only when something failed: worker start-up stays lean

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text if len(text) <= TRACEBACK_CHARS else "\u2026" + text[-TRACEBACK_CHARS:]
