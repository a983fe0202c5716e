"""Mission: a goal, a DAG of steps, and the state machine that runs them.


pending -> planning -> running -> succeeded | failed | stalled (| cancelled)

Everything a mission does is emitted as an event (see :mod:`.events`) into its
``audit_log`` and into any extra sinks (the runtime plugs its store in here). Sequential
steps run in the calling thread; ready ``parallel=True`` steps run together on threads.
"""

from __future__ import annotations

import contextvars
import functools
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping

from . import checkpoint
from .errors import (
    MissionCancelled,
    MissionValidationError,
    ModelResolutionError,
    classify_error,
    describe_error,
)
from .events import (
    Event,
    EventSink,
    StepContext,
    make_event,
    reset_step_context,
    set_step_context,
)
from .hooks import HookSink, MissionHooks
from .ids import new_mission_id, validate_mission_id
from .listeners import dispatch
from .models import model_label, model_spec, registered_providers, resolve_model, split_spec
from .planning import parse_plan, plan_prompt, validate_dag
from .policy import ESCALATION_DIRECTIVES, Resolve, StallPolicy
from .session import SharedSession
from .status import MISSION_STATUSES, TERMINAL_STATUSES, MissionStatus, StepStatus
from .step import MissionStep, check_executor
from .timeouts import call_with_timeout

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MISSION_STATUSES",
    "TERMINAL_STATUSES",
    "Mission",
    "MissionStatus",
    "new_mission_id",
    "retry_delay",
]

#: Longest wait between retries, in seconds (before the backoff factor).
MAX_BACKOFF_SECS = 30.0
#: Progress events of one step closer together than this are dropped (the value is kept).
PROGRESS_EVENT_INTERVAL = 0.05


def retry_delay(attempt: int, factor: float) -> float:
    """Seconds to wait after failed attempt ``attempt``: ``min(2**(n-1), 30) * factor``."""
    return min(2.0 ** (attempt - 1), MAX_BACKOFF_SECS) * factor


def _coerce_step(item: MissionStep | Mapping[str, Any], index: int) -> MissionStep:
    if isinstance(item, MissionStep):
        return item
    if isinstance(item, Mapping):
        spec = dict(item)
        if "can_parallel" in spec:
            spec["parallel"] = spec.pop("can_parallel")
        try:
            return MissionStep(**spec)
        except TypeError as exc:
            raise MissionValidationError(f"step #{index + 1}: {exc}") from None
    raise MissionValidationError(
        f"step #{index + 1} must be a MissionStep or a dict, got {type(item).__name__}"
    )


class Mission:
    """A goal-driven, multi-step job.

    ``steps`` may be given (MissionStep objects or dicts) or, with ``auto_plan``, planned
    by ``model``. ``executor`` is the default for steps without one; steps with neither are
    executed by the model. ``backoff_factor`` scales the retry waits (0 in tests).
    """

    backoff_factor: float = 1.0

    def __init__(
        self,
        goal: str,
        steps: Iterable[MissionStep | Mapping[str, Any]] | None = None,
        model: Any = None,
        executor: Callable | Any | None = None,
        stall_policy: StallPolicy | Mapping[str, Any] | None = None,
        hooks: MissionHooks | Mapping[str, Callable] | None = None,
        session: SharedSession | None = None,
        auto_plan: bool = True,
        *,
        backoff_factor: float | None = None,
        mission_id: str | None = None,
    ) -> None:
        if not isinstance(goal, str) or not goal.strip():
            raise MissionValidationError(f"mission goal must be a non-empty string, got {goal!r}")
        check_executor(executor, "mission")
        if session is not None and not isinstance(session, SharedSession):
            raise MissionValidationError(
                f"session must be a SharedSession, got {type(session).__name__}"
            )
        if backoff_factor is not None:
            if not isinstance(backoff_factor, int | float) or backoff_factor < 0:
                raise MissionValidationError(
                    f"backoff_factor must be a number >= 0, got {backoff_factor!r}"
                )
            self.backoff_factor = float(backoff_factor)
        self.id = new_mission_id() if mission_id is None else validate_mission_id(mission_id)
        self.goal = goal.strip()
        resolve_model(model)  # a model of an unusable kind fails here, at construction
        #: The model as the user gave it (a "provider:name" string stays a string).
        self.model = model
        #: Set for one run (``run(model=...)`` or by a runtime): wins over ``model``.
        self.run_model: Any = None
        #: The orchestrator's model: used only when neither of the above is set.
        self.fallback_model: Any = None
        self._active_model: Any = None
        self.default_executor = executor
        self.stall_policy = StallPolicy.coerce(stall_policy)
        self.hooks = MissionHooks.coerce(hooks)
        self.session_given = session is not None
        self.session = session if session is not None else SharedSession(model=model)
        self.auto_plan = bool(auto_plan)
        self.steps: list[MissionStep] | None = None
        if steps is not None:
            self.steps = [_coerce_step(item, i) for i, item in enumerate(steps)]
            validate_dag((s.id, s.depends_on) for s in self.steps)
            if not self.steps:
                self.steps = None
        self.status = MissionStatus.PENDING
        self.error: str | None = None
        self.audit_log: list[Event] = []
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        #: When set, the mission saves itself there after every finished step.
        self.checkpoint_path: str | None = None
        #: Why a runtime flagged the mission as stalled (heartbeat, no progress, ...).
        self.stall_reason: str | None = None
        self._init_runtime_state()

    def _init_runtime_state(self) -> None:
        self._lock = threading.RLock()
        # Hooks are a sink of the event stream like the others (after them: the record first).
        self._hook_sink = HookSink(self)
        self._sinks: list[EventSink] = []
        self._cancel = threading.Event()
        self._last_progress_emit: dict[str | None, float] = {}

    # -- events ---------------------------------------------------------------------------

    def add_event_sink(self, sink: EventSink) -> None:
        """Send every future event to ``sink(event)`` too (besides ``audit_log``)."""
        with self._lock:
            self._sinks.append(sink)

    def remove_event_sink(self, sink: EventSink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def _emit(self, name: str, **fields: Any) -> Event:
        event = make_event(name, self.id, **fields)
        with self._lock:
            if name == "progress":
                key = fields.get("step_id")
                last = self._last_progress_emit.get(key, 0.0)
                if (
                    event["timestamp"] - last < PROGRESS_EVENT_INTERVAL
                    and (fields.get("progress") or 0.0) < 1.0
                ):
                    return event
                self._last_progress_emit[key] = event["timestamp"]
            self.audit_log.append(event)
            sinks = list(self._sinks)
        dispatch(sinks, event, what=f"event sink (on {name})")
        self._hook_sink(event)
        return event

    # -- derived state --------------------------------------------------------------------

    @property
    def progress(self) -> float:
        """Fraction of the work done, 0.0..1.0: done and skipped steps count whole, running
        steps by their reported progress, failed steps that stopped the mission not at all."""
        if self.status == "succeeded":
            return 1.0
        steps = self.steps
        if not steps:
            return 0.0
        total = 0.0
        for step in steps:
            # A skipped step was dealt with; a failed one that stopped the mission was not.
            if step.status == "done" or (step.status == "failed" and step.skipped):
                total += 1.0
            elif step.status in ("running", "retrying"):
                total += min(max(step.progress, 0.0), 1.0)
        return total / len(steps)

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def step_summary(self) -> dict[str, str]:
        """The status of each step by id, as aisdk gives it: ``{"s1": "done", "s2": "pending"}``.

        Empty before the mission is planned. Counts are :meth:`step_counts`.
        """
        return {step.id: str(step.status) for step in self.steps or []}

    def step_counts(self) -> dict[str, Any]:
        """Counts of steps by status, plus totals, retries and progress."""
        counts = {status: 0 for status in ("pending", "running", "retrying", "done", "failed")}
        for step in self.steps or []:
            counts[step.status] = counts.get(step.status, 0) + 1
        return {
            "mission_id": self.id,
            "status": self.status,
            "total": len(self.steps or []),
            **counts,
            "skipped": sum(1 for s in self.steps or [] if s.skipped),
            "retries": sum(s.retry_count for s in self.steps or []),
            "progress": self.progress,
        }

    def get_step(self, step_id: str) -> MissionStep:
        for step in self.steps or []:
            if step.id == step_id:
                return step
        raise KeyError(f"mission {self.id} has no step {step_id!r}")

    def request_cancel(self) -> None:
        """Ask the mission to stop: no new step or retry starts; the mission ends cancelled."""
        self._cancel.set()

    # -- checks before running --------------------------------------------------------------

    def needs_model(self) -> str | None:
        """Why this mission needs a model (None when it does not)."""
        if not self.steps:
            return "to plan the goal (the mission has no steps)"
        if self.default_executor is None:
            for step in self.steps:
                if step.executor is None and step.status != "done":
                    return f"to execute step {step.id!r}, which has no executor"
        return None

    def preflight(self) -> None:
        """Raise now, before anything runs, for problems that would surely fail the mission."""
        if not self.steps and not self.auto_plan:
            raise MissionValidationError(
                f"mission {self.id} ({self.goal!r}) has no steps and auto_plan=False"
            )
        why = self.needs_model()
        if why is None:
            return
        model = self.model_for_run()
        if model is None:
            raise ModelResolutionError(
                f"mission {self.id} ({self.goal!r}) needs a model {why}, but none was given"
            )
        spec = model_spec(model)
        if spec is not None:
            provider, _ = split_spec(spec)
            if provider not in registered_providers():
                raise ModelResolutionError(
                    f"mission {self.id} needs model {spec!r} {why}, but no provider "
                    f"{provider!r} is registered (known: {', '.join(registered_providers())})"
                )

    # -- running ----------------------------------------------------------------------------

    def model_for_run(self) -> Any:
        """The model a run uses, as given: ``run(model=)`` > the mission's > the fallback."""
        for model in (self.run_model, self.model, self.fallback_model):
            if model is not None:
                return model
        return None

    def run(self, model: Any = None, *, fallback_model: Any = None) -> Mission:
        """Run to a terminal status (blocking) and return self.

        Problems found before starting raise (see :meth:`preflight`); failures while running
        end the mission ``failed`` (or ``stalled``) with the reason in ``mission.error``.
        A finished mission is returned as it is; a resumed one continues where it stopped.
        """
        if model is not None:
            resolve_model(model)  # an unusable kind fails now
            self.run_model = model
        if fallback_model is not None:
            self.fallback_model = fallback_model
        if self.status == "succeeded":
            return self
        self.preflight()
        self.status = MissionStatus.PENDING
        self.error = None
        self.started_at = time.time()
        self.finished_at = None
        # Resolved lazily: a "provider:name" string is looked up only when a plan or an
        # executor-less step needs it.
        self._active_model = resolve_model(self.model_for_run())
        self._emit("mission_start", goal=self.goal, model=model_label(self.model_for_run()))
        try:
            if self._cancel.is_set():
                raise MissionCancelled()
            if not self.steps:
                self._plan()
            else:
                self._emit("mission_planned", n_steps=len(self.steps), steps=self._specs())
            self.status = MissionStatus.RUNNING
            self._run_steps()
        except MissionCancelled:
            self.status = MissionStatus.CANCELLED
            self.error = self.error or "cancelled"
        except Exception as exc:
            self.status = MissionStatus.FAILED
            self.error = describe_error(exc)
        self.finished_at = time.time()
        summary = self.step_counts()
        self._emit(
            "mission_done",
            status=self.status,
            error_message=self.error,
            error_type=None if self.error is None else "mission_" + self.status,
            duration_ms=(self.finished_at - self.started_at) * 1000.0,
            n_done=summary["done"],
            n_failed=summary["failed"],
            n_steps=summary["total"],
        )
        self._save_checkpoint()
        self._cancel.clear()  # the request is served; run() may be called again later
        self.run_model = self._active_model = None  # run(model=) was for that run only
        return self

    def _specs(self) -> list[dict[str, Any]]:
        return [step.spec() for step in self.steps or []]

    def _plan(self) -> None:
        self.status = MissionStatus.PLANNING
        self._emit("planner_start")
        model = self._active_model
        if model is None:
            raise ModelResolutionError(f"mission {self.id} needs a model to plan its goal")
        started = time.time()
        token = set_step_context(StepContext(emit=self._emit, step=None, attempt=1))
        try:
            reply = model.generate(plan_prompt(self.goal))
        finally:
            reset_step_context(token)
        try:
            specs = parse_plan(reply if isinstance(reply, str) else str(reply))
        except Exception as exc:
            self._emit(
                "planner_done",
                error_type="plan_error",
                error_message=str(exc),
                duration_ms=(time.time() - started) * 1000.0,
            )
            raise
        self.steps = [MissionStep(**spec) for spec in specs]
        self._emit(
            "planner_done",
            duration_ms=(time.time() - started) * 1000.0,
            n_steps=len(self.steps),
            steps=self._specs(),
        )
        self._emit("mission_planned", n_steps=len(self.steps), steps=self._specs())

    def _run_steps(self) -> None:
        steps = self.steps or []
        by_id = {step.id: step for step in steps}
        order = validate_dag((s.id, s.depends_on) for s in steps)
        for step in steps:
            if step.status != "done":
                if step.status == "failed":
                    step.retry_count = 0
                step.status, step.skipped, step.progress = StepStatus.PENDING, False, 0.0
        pending = [by_id[i] for i in order if by_id[i].status == "pending"]
        running: set[str] = set()
        finished: queue.SimpleQueue[tuple[MissionStep, str | BaseException]] = queue.SimpleQueue()
        stop: tuple[str, MissionStep] | None = None

        def ready() -> list[MissionStep]:
            return [s for s in pending if all(by_id[d].is_finished for d in s.depends_on)]

        def run_on_thread(step: MissionStep, context: contextvars.Context) -> None:
            try:
                finished.put((step, context.run(self._run_step, step)))
            except BaseException as exc:  # re-raised in the scheduling thread
                finished.put((step, exc))

        while True:
            if stop is None and not self._cancel.is_set():
                candidates = ready()
                if not running:
                    batch = [s for s in candidates if s.parallel] or candidates[:1]
                elif all(by_id[i].parallel for i in running):
                    batch = [s for s in candidates if s.parallel]
                else:
                    batch = []
                for step in batch:
                    pending.remove(step)
                if len(batch) == 1 and not running and not batch[0].parallel:
                    # Sequential steps run here, in the mission's own thread.
                    stop = self._settle(batch[0], self._run_step(batch[0]), pending) or stop
                    continue
                for step in batch:
                    running.add(step.id)
                    threading.Thread(
                        target=run_on_thread,
                        args=(step, contextvars.copy_context()),
                        name=f"mission-step-{step.id}",
                        daemon=True,
                    ).start()
            if not running:
                break
            step, outcome = finished.get()
            running.discard(step.id)
            if isinstance(outcome, BaseException):
                while running:  # let the other parallel steps end before failing
                    other, _ = finished.get()
                    running.discard(other.id)
                raise outcome
            stop = stop or self._settle(step, outcome, pending)
        if self._cancel.is_set():
            raise MissionCancelled()
        if stop is not None:
            kind, step = stop
            if kind == "stall":
                self.status = MissionStatus.STALLED
                self.error = f"stalled at step {step.id!r}: {step.last_error}"
                return
            self.status = MissionStatus.FAILED
            self.error = f"aborted at step {step.id!r}: {step.last_error}"
            return
        if pending:  # only reachable if dependencies never finished
            raise MissionValidationError(
                "steps could not run: " + ", ".join(repr(s.id) for s in pending)
            )
        failed = [s for s in steps if s.status == "failed"]
        self.status = MissionStatus.SUCCEEDED
        if failed:
            self.error = "skipped failed step(s): " + ", ".join(repr(s.id) for s in failed)

    def _settle(
        self, step: MissionStep, outcome: str, pending: list[MissionStep]
    ) -> tuple[str, MissionStep] | None:
        """Act on a step's outcome; return ("abort"|"stall", step) to stop the mission."""
        self._save_checkpoint()
        if outcome == "escalate":
            outcome = self._escalate(step)
        if outcome in ("done", "cancelled", "resolved"):
            return None
        if outcome == "retry":
            step.status, step.retry_count, step.progress = StepStatus.PENDING, 0, 0.0
            pending.insert(0, step)
            return None
        if outcome == "skip":
            step.skipped = True
            self._emit("step_skipped", step_id=step.id, error_message=step.last_error)
            return None
        if outcome == "abort":
            return ("abort", step)
        self._emit(
            "mission_stall",
            step_id=step.id,
            reason="retries exhausted; escalation did not resolve the step",
            error_message=step.last_error,
        )
        return ("stall", step)

    def _escalate(self, step: MissionStep) -> str:
        """Ask ``escalate_fn``: "retry", "skip", "abort", "resolved" (it answered with
        :class:`Resolve`) or "stall" (no answer, or a value that is not a directive)."""
        escalate_fn = self.stall_policy.escalate_fn
        if escalate_fn is None or step.escalations >= self.stall_policy.max_escalations:
            return "stall"
        step.escalations += 1
        resolution = None
        try:
            resolution = escalate_fn(self, step)
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
        self._emit(
            "escalation",
            step_id=step.id,
            resolution=repr(resolution)[:200],
            directive=directive,
        )
        if not isinstance(resolution, Resolve):
            return directive
        step.result, step.status, step.progress = resolution.result, StepStatus.DONE, 1.0
        self._emit(
            "step_done",
            step_id=step.id,
            resolved_by="escalation",
            result=_preview(resolution.result),
        )
        return "resolved"

    def _step_context(self, step: MissionStep, with_errors: bool) -> str | None:
        parts = []
        if step.depends_on:
            lines = []
            for dep_id in step.depends_on:
                dep = self.get_step(dep_id)
                if dep.status == "done":
                    lines.append(f"- {dep_id}: {dep.result}")
                else:
                    lines.append(f"- {dep_id}: (failed and skipped: {dep.last_error})")
            parts.append("RESULTS OF EARLIER STEPS:\n" + "\n".join(lines))
        if step.executor is None and self.default_executor is None:  # the model executes it
            memory = memory_context(self.session.memory(), f"{self.goal}\n{step.description}")
            if memory:
                parts.append(memory)
        if with_errors and step.error_history:
            lines = [f"- attempt {e['attempt']}: {e['error']}" for e in step.error_history]
            parts.append(
                "PREVIOUS ATTEMPT(S) FAILED. Avoid repeating these errors:\n" + "\n".join(lines)
            )
        return "\n\n".join(parts) or None

    def _execute_attempt(self, step: MissionStep, attempt: int, context: str | None) -> Any:
        token = set_step_context(StepContext(emit=self._emit, step=step, attempt=attempt))
        try:
            return step.run(
                self.session,
                self._active_model,
                context,
                goal=self.goal,
                executor=self.default_executor,
            )
        finally:
            reset_step_context(token)

    def _run_step(self, step: MissionStep) -> str:
        """Run a step's attempts; return "done", "skip", "abort", "escalate" or "cancelled"."""
        policy = self.stall_policy
        max_attempts = 1 if policy.on_tool_failure == "fail" else step.max_retries + 1
        inject = policy.on_tool_failure == "inject_error_and_retry"
        while True:
            attempt = len(step.error_history) + 1
            step.status = StepStatus.RUNNING if step.retry_count == 0 else StepStatus.RETRYING
            step.progress = 0.0
            step.started_at = step.started_at or time.time()
            self._emit("step_start", step_id=step.id, attempt=attempt, description=step.description)
            context = self._step_context(step, with_errors=inject)
            started = time.time()
            try:
                result = call_with_timeout(
                    functools.partial(self._execute_attempt, step, attempt, context),
                    step.timeout_secs,
                )
            except Exception as exc:
                failed_at = time.time()  # one time for the history and the event
                step.last_exception = exc  # for the hooks (the event carries its description)
                duration = (failed_at - started) * 1000.0
                error_type = classify_error(exc)
                message = describe_error(exc)
                step.error_history.append(
                    {
                        "attempt": attempt,
                        "error": message,
                        "error_type": error_type,
                        "timestamp": failed_at,
                    }
                )
                self._emit(
                    "step_failure",
                    step_id=step.id,
                    attempt=attempt,
                    error_type=error_type,
                    error_message=message,
                    duration_ms=duration,
                    timestamp=failed_at,
                )
                timed_out = error_type == "timeout"
                if timed_out and policy.on_step_timeout in ("skip", "abort"):
                    return self._give_up(step, exc, attempt, policy.on_step_timeout)
                if step.retry_count + 1 < max_attempts and not self._cancel.is_set():
                    step.retry_count += 1
                    delay = retry_delay(step.retry_count, self.backoff_factor)
                    self._emit(
                        "retry_start",
                        step_id=step.id,
                        attempt=attempt + 1,
                        error_type=error_type,
                        error_message=message,
                        delay_secs=delay,
                    )
                    if delay and self._cancel.wait(delay):
                        return self._give_up(step, exc, attempt, "cancelled")
                    continue
                if self._cancel.is_set():
                    return self._give_up(step, exc, attempt, "cancelled")
                if timed_out and policy.on_step_timeout == "skip_or_replan":
                    return self._give_up(step, exc, attempt, "skip")
                return self._give_up(step, exc, attempt, policy.on_max_retries)
            duration = (time.time() - started) * 1000.0
            step.result, step.status, step.progress = result, StepStatus.DONE, 1.0
            step.finished_at = time.time()
            preview = _preview(result)
            self._emit(
                "step_success",
                step_id=step.id,
                attempt=attempt,
                duration_ms=duration,
                result=preview,
            )
            if attempt > 1:
                self._emit("retry_success", step_id=step.id, attempt=attempt)
            self._emit("step_done", step_id=step.id, attempt=attempt, result=preview)
            return "done"

    def _give_up(self, step: MissionStep, error: BaseException, attempt: int, outcome: str) -> str:
        step.status = StepStatus.FAILED
        step.finished_at = time.time()
        self._emit(
            "step_failed",
            step_id=step.id,
            attempt=attempt,
            error_type=classify_error(error),
            error_message=describe_error(error),
            outcome=outcome,
        )
        return outcome

    # -- save / resume (see :mod:`.checkpoint`) ----------------------------------------------

    def to_dict(self, *, include_executors: bool = True) -> dict[str, Any]:
        """The JSON-ready state of the mission (what :meth:`save` writes)."""
        return checkpoint.mission_state(self, include_executors=include_executors)

    def save(self, path: str | os.PathLike) -> str:
        """Write the mission as human-readable JSON (atomically); returns the path."""
        return checkpoint.save_mission(self, path)

    def resume(self, path: str | os.PathLike) -> Mission:
        """Load a saved mission into self; :meth:`run` then continues where it stopped.

        Executors given to this Mission win over stored ones; stored executors fill the gaps.
        """
        return checkpoint.load_into(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> Mission:
        """A new Mission from a save file (``kwargs`` as for the constructor, e.g. executor)."""
        data = checkpoint.read_mission_file(path)
        goal = data.get("goal")
        if not isinstance(goal, str) or not goal:
            raise checkpoint.CheckpointError(f"mission file {path} has no goal")
        return cls(goal, **kwargs).resume(path)

    def load_state(
        self, data: Mapping[str, Any], source: str = "state", *, final: bool = False
    ) -> None:
        """Apply saved state (see :meth:`to_dict`) to this mission (see
        :func:`.checkpoint.apply_state`)."""
        checkpoint.apply_state(self, data, source, final=final)

    def _save_checkpoint(self) -> None:
        if self.checkpoint_path:
            checkpoint.Checkpointer(self, self.checkpoint_path).save()

    # -- pickling (missions travel to worker processes) ----------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_lock", "_sinks", "_hook_sink", "_cancel", "_last_progress_emit"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime_state()

    def __repr__(self) -> str:
        n = len(self.steps) if self.steps else 0
        return f"Mission({self.id!r}, goal={self.goal!r}, status={str(self.status)!r}, steps={n})"


#: Shared session memory shown to a model executing a step: at most this many characters
#: in all, and this many per entry.
MEMORY_CONTEXT_CHARS = 2000
MEMORY_ENTRY_CHARS = 500


def memory_context(memory: Mapping[str, Any], text: str) -> str | None:
    """The shared session memory to show a model executing a step, bounded in size.

    Entries whose key appears in ``text`` (the goal and the step description) come first,
    then the others while they fit; keys starting with ``_`` are private and never shown.
    """
    import json
    import re

    lowered = text.lower()

    def mentioned(key: str) -> bool:
        words = {key.lower(), key.lower().replace("_", " ")}
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", lowered) for w in words)

    entries = [(k, v) for k, v in memory.items() if isinstance(k, str) and not k.startswith("_")]
    entries.sort(key=lambda item: not mentioned(item[0]))
    lines: list[str] = []
    used = left_out = 0
    for key, value in entries:
        if isinstance(value, str):
            shown = value
        else:
            try:
                shown = json.dumps(value, ensure_ascii=False, default=repr)
            except (TypeError, ValueError):
                shown = repr(value)
        if len(shown) > MEMORY_ENTRY_CHARS:
            shown = shown[:MEMORY_ENTRY_CHARS] + " ..."
        line = f"- {key}: {shown}"
        if used + len(line) > MEMORY_CONTEXT_CHARS:
            left_out += 1
            continue
        lines.append(line)
        used += len(line) + 1
    if left_out:
        lines.append(f"({left_out} more entries not shown)")
    return "SHARED SESSION MEMORY:\n" + "\n".join(lines) if lines else None


def _preview(value: Any, limit: int = 300) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."
