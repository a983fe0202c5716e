"""Mission: a goal, a DAG of steps, and the state machine that runs them.

pending -> planning -> running (<-> waiting for a person) -> succeeded | failed | stalled
(a step used its retries, nothing resolved it) | cancelled. See core/status.py.

Everything a mission does is emitted as an event (see :mod:`.events`) into its
``audit_log`` and into any extra sinks (the runtime plugs its store in here); its hooks are
one more sink. Running the steps is :mod:`.runner`; saving and resuming is :mod:`.checkpoint`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from . import checkpoint
from .asyncrun import settle
from .budget import Budget, budget_state, count_model_call, guard_for, release_calls
from .checks import bound_fields, number_option
from .context import MEMORY_CONTEXT_CHARS, MEMORY_ENTRY_CHARS, memory_context
from .errors import (
    MissionCancelled,
    MissionValidationError,
    ModelResolutionError,
    PlanError,
    StepRaisedBaseException,
    describe_error,
)
from .events import Event, EventSink, StepContext, make_event, reset_step_context, set_step_context
from .hooks import HookSink, MissionHooks
from .ids import new_mission_id, validate_mission_id
from .listeners import dispatch
from .models import model_label, model_spec, registered_providers, resolve_model, split_spec
from .planning import parse_plan, plan_prompt, validate_dag
from .policy import StallPolicy
from .runner import MAX_BACKOFF_SECS, StepRunner, retry_delay
from .session import SharedSession
from .status import MISSION_STATUSES, STEP_STATUSES, TERMINAL_STATUSES, MissionStatus, StepStatus
from .step import MissionStep, StepTally, check_executor
from .unpickling import upgraded_state
from .values import LARGE_VALUE_BYTES, LargeValue, LoadedWhenRead, summarize

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_BACKOFF_SECS",
    "MAX_PARALLEL",
    "MAX_PLAN_STEPS",
    "MEMORY_CONTEXT_CHARS",
    "MEMORY_ENTRY_CHARS",
    "MISSION_STATUSES",
    "TERMINAL_STATUSES",
    "Mission",
    "MissionStatus",
    "memory_context",
    "new_mission_id",
    "retry_delay",
]

#: Progress events of one step closer together than this are dropped (the value is kept).
PROGRESS_EVENT_INTERVAL = 0.05
#: Longest preview of a mission's result (status()["result_summary"], the panel's rows).
RESULT_PREVIEW_CHARS = 200
#: Most steps a mission may have (planned or given), unless ``Mission(max_steps=...)``.
MAX_PLAN_STEPS = 100
#: Most parallel steps running at once, unless ``Mission(max_parallel=...)``.
MAX_PARALLEL = 8
_RENAMED = {"id": "_id", "goal": "_goal", "steps": "_steps"}  # older releases' pickles


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


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MissionValidationError(f"{name} must be an int >= 1, got {value!r}")
    return value


class Mission:
    """A goal-driven, multi-step job.

    ``steps`` may be given (MissionStep objects or dicts) or, with ``auto_plan``, planned
    by ``model``. ``executor`` is the default for steps without one; steps with neither are
    executed by the model. ``backoff_factor`` scales the retry waits (0 in tests).

    Bounds: at most ``max_steps`` steps (default :data:`MAX_PLAN_STEPS`; a longer plan fails
    at once naming the limit) and at most ``max_parallel`` parallel steps at once (default
    :data:`MAX_PARALLEL`). ``decision_source(step) -> answer | None`` answers the questions
    of ``StallPolicy(on_max_retries="ask")`` (a runtime sets it; see :mod:`.decisions`).

    A step result that can be neither JSON nor pickled is kept as its ``repr`` with a
    RuntimeWarning (``step.result_note`` and the ``result_note`` field of its events say so),
    so the mission still ends with its real status. A BaseException raised by an executor
    (SystemExit, KeyboardInterrupt, ...) ends the mission ``failed`` at once, its
    ``mission_done`` event's ``error_type`` naming the exception class.
    """

    _goal: str | LargeValue
    #: The goal's one file, once checkpoint.share_large_goal wrote it (pickles refer to it).
    _goal_ref: LargeValue | None = None

    backoff_factor: float = 1.0
    #: The last message a step gave ``report_progress`` (None until one does).
    message: str | None = None
    #: Missions pickled before ``result_step`` existed read as "the last step".
    result_step: str | None = None

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
        max_steps: int = MAX_PLAN_STEPS,
        max_parallel: int = MAX_PARALLEL,
        decision_source: Callable[[MissionStep], Any] | None = None,
        result_step: str | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        on_budget: str = "abort",
    ) -> None:
        if not isinstance(goal, str) or not goal.strip():
            raise MissionValidationError(f"mission goal must be a non-empty string, got {goal!r}")
        check_executor(executor, "mission")
        if session is not None and not isinstance(session, SharedSession):
            raise MissionValidationError(
                f"session must be a SharedSession, got {type(session).__name__}"
            )
        if backoff_factor is not None:
            self.backoff_factor = float(
                number_option("backoff_factor", backoff_factor, error=MissionValidationError) or 0.0
            )
        self.id = new_mission_id() if mission_id is None else mission_id
        self.budget, self.on_budget, self.usage = budget_state(budget, on_budget)  # .budget
        #: MissionOrchestrator(budget=...)'s ledger (core.budget.SharedLedger), or None.
        self.shared_budget: Any = None
        self.max_steps = _positive_int(max_steps, "max_steps")
        self.max_parallel = _positive_int(max_parallel, "max_parallel")
        if decision_source is not None and not callable(decision_source):
            raise MissionValidationError(
                f"decision_source must be callable, got {type(decision_source).__name__}"
            )
        #: Answers questions of on_max_retries="ask" (see :mod:`.decisions`); not pickled.
        self.decision_source = decision_source
        #: The id of the step waiting for a decision, else None.
        self.waiting_on: str | None = None
        #: Why nobody could answer the last question (set by :mod:`.decisions`).
        self.no_answer_reason: str | None = None
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
        self.steps = None
        if steps is not None:
            given = [_coerce_step(item, i) for i, item in enumerate(steps)]
            self._check_size(len(given), "the mission has")
            validate_dag((s.id, s.depends_on) for s in given)
            self.steps = given or None
        if result_step is not None and (
            not isinstance(result_step, str)
            or (self.steps and result_step not in {s.id for s in self.steps})
        ):
            raise MissionValidationError(
                f"result_step must name one of the mission's steps, got {result_step!r}"
            )
        #: The step whose result is the mission's (None: the last step of the plan).
        self.result_step = result_step
        self.status = MissionStatus.PENDING
        self.error: str | None = None
        self.audit_log: list[Event] = []
        self.created_at = time.time()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        #: When set, a run keeps its checkpoint there (see :class:`.checkpoint.Checkpointer`).
        self.checkpoint_path: str | None = None
        #: Health flag of a running mission: "no_heartbeat" | "no_progress" | None (healthy).
        self.stall_reason: str | None = None
        self._init_runtime_state()

    def _init_runtime_state(self) -> None:
        self._lock = threading.RLock()
        # Hooks are a sink of the event stream like the others (after them: the record first).
        self._hook_sink = HookSink(self)
        self._sinks: list[EventSink] = []
        self._cancel = threading.Event()
        self._last_progress_emit: dict[str | None, float] = {}
        self._checkpointer: checkpoint.Checkpointer | None = None

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
        if name == "model_call":
            count_model_call(self, fields)
        # Errors, tracebacks and messages are bounded here, once, for every sink and file.
        event = bound_fields(make_event(name, self.id, **fields))
        with self._lock:
            if name == "progress":
                if fields.get("message"):
                    self.message = fields["message"]
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
    def steps(self) -> list[MissionStep] | None:
        """The steps (None before a plan); assigning a list makes the mission follow them."""
        return self._steps

    @steps.setter
    def steps(self, value: list[MissionStep] | None) -> None:
        self._steps = value
        self._tally = StepTally(value or [])
        self._index: dict[str, MissionStep] = {s.id: s for s in value or []}

    def _check_size(self, n_steps: int, what: str) -> None:
        if n_steps > self.max_steps:
            raise MissionValidationError(
                f"mission {self.id}: {what} {n_steps} steps, more than the limit of "
                f"max_steps={self.max_steps} (raise it with Mission(max_steps=...))"
            )

    @property
    def progress(self) -> float:
        """Fraction of the work done, 0.0..1.0, that never goes back while a mission runs.

        Done and skipped steps count whole; any other step counts the most progress one of
        its attempts reached, so a retry keeps the step's share, and a failed or cancelled
        mission keeps the progress it reached (as tqdm keeps a bar where it stopped).
        Kept incrementally: O(1) however many steps there are.
        """
        if self.status == MissionStatus.SUCCEEDED:
            return 1.0
        steps = self._steps
        if not steps:
            return 0.0
        return min(max(self._tally.shares / len(steps), 0.0), 1.0)

    @property
    def is_finished(self) -> bool:
        """True once the mission ended (a mission waiting for a decision has not)."""
        return self.status in TERMINAL_STATUSES and self.waiting_on is None

    def live_summary(self) -> dict[str, Any]:
        """Status, step counts and progress in O(1): what a runtime stores after each event."""
        counts = self._tally.counts
        return {
            "status": str(self.status),
            "n_steps": len(self._steps or ()),
            "n_done": counts[StepStatus.DONE],
            "n_failed": counts[StepStatus.FAILED],
            "progress": self.progress,
            "waiting_on": self.waiting_on,
        }

    def step_summary(self) -> dict[str, str]:
        """The status of each step by id, as aisdk gives it: ``{"s1": "done", "s2": "pending"}``.

        Empty before the mission is planned. Counts are :meth:`step_counts`.
        """
        return {step.id: str(step.status) for step in self.steps or []}

    def step_counts(self) -> dict[str, Any]:
        """Counts of steps by status (a skipped step is neither done nor failed), plus
        totals, retries and progress."""
        counts = dict.fromkeys(STEP_STATUSES, 0)
        for step in self.steps or []:
            counts[step.status] = counts.get(step.status, 0) + 1
        return {
            "mission_id": self.id,
            "status": self.status,
            "total": len(self.steps or []),
            **counts,
            "retries": sum(s.retry_count for s in self.steps or []),
            "progress": self.progress,
        }

    def get_step(self, step_id: str) -> MissionStep:
        step = self._index.get(step_id)
        if step is not None:
            return step
        for step in self._steps or []:  # a step appended to the list in place
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
        self.message = None
        self.finished_at = None
        # Resolved lazily: a "provider:name" string is looked up only when a plan or an
        # executor-less step needs it.
        self._active_model = resolve_model(self.model_for_run())
        self._emit(
            "mission_start", goal=self._goal_for_events(), model=model_label(self.model_for_run())
        )
        error_type = None
        try:
            if self._cancel.is_set():
                raise MissionCancelled()
            if not self.steps:
                self._plan()
            else:
                self._emit("mission_planned", n_steps=len(self.steps), steps=self._specs())
            self.status = MissionStatus.RUNNING
            self._open_checkpoint()
            StepRunner(self).run()
        except MissionCancelled:
            self.status = MissionStatus.CANCELLED
            self.error = self.error or "cancelled"
        except StepRaisedBaseException as exc:
            self.status = MissionStatus.FAILED
            self.error, error_type = str(exc), exc.error_type
        except Exception as exc:
            self.status = MissionStatus.FAILED
            self.error = describe_error(exc)
        self.waiting_on = None
        self.finished_at = time.time()
        counts = self._tally.counts
        if error_type is None and self.error is not None:
            error_type = "mission_" + self.status
        self._emit(
            "mission_done",
            status=self.status,
            error_message=self.error,
            error_type=error_type,
            duration_ms=(self.finished_at - self.started_at) * 1000.0,
            n_done=counts[StepStatus.DONE],
            n_failed=counts[StepStatus.FAILED],
            n_steps=len(self.steps or ()),
            result_summary=self.result_preview(),
        )
        self._close_checkpoint()
        self._cancel.clear()  # the request is served; run() may be called again later
        self.run_model = self._active_model = None  # run(model=) was for that run only
        return self

    @property
    def result(self) -> Any:
        """What the mission produced: the result of the step named ``result_step``, else of
        the last step of the plan (None until that step is done; a skipped step has none)."""
        step = self._result_source()
        return None if step is None else step.result

    def _result_source(self) -> MissionStep | None:
        if not self._steps:
            return None
        if self.result_step is not None:
            step = self._index.get(self.result_step)
        else:
            step = self._steps[-1]
        if step is None or step.status != StepStatus.DONE or getattr(step, "skipped", False):
            return None
        return step

    def result_preview(self, limit: int = RESULT_PREVIEW_CHARS) -> str | None:
        """A short, one-line preview of :attr:`result` (a large one by its summary, never
        loaded): what ``status()["result_summary"]`` and the panel show."""
        step = self._result_source()
        value = None if step is None else step.stored_result()
        if value is None:
            return None
        if isinstance(value, LargeValue):
            return value.describe()
        return " ".join(summarize(value, limit).split())

    def large_results_summary(self) -> str | None:
        """One line naming the results kept in files of their own (over LARGE_VALUE_BYTES):
        ``"step: summary [N bytes, stored in file]"``, ``; ``-separated; None when there are none.
        Read without loading them (``status()`` and the panel show it)."""
        notes = [
            f"{step.id}: {value.describe()}"
            for step in self.steps or ()
            if isinstance(value := step.stored_result(), LargeValue)
        ]
        return "; ".join(notes) or None

    def _goal_for_events(self) -> str:
        """The goal as events carry it: a goal over LARGE_VALUE_BYTES by its summary."""
        if len(self.goal.encode()) <= LARGE_VALUE_BYTES:
            return self.goal
        return summarize(self.goal) + f" [goal of {len(self.goal.encode()):,} bytes]"

    def _specs(self) -> list[dict[str, Any]]:
        return [step.spec() for step in self.steps or []]

    def _plan(self) -> None:
        self.status = MissionStatus.PLANNING
        self._emit("planner_start")
        model = self._active_model
        if model is None:
            raise ModelResolutionError(f"mission {self.id} needs a model to plan its goal")
        started = time.time()
        token = set_step_context(StepContext(self._emit, None, 1, guard_for(self)))
        try:
            reply = settle(model.generate(plan_prompt(self.goal)))
        finally:
            reset_step_context(token)
            release_calls(self)
        try:
            specs = parse_plan(reply if isinstance(reply, str) else str(reply))
            if len(specs) > self.max_steps:
                raise PlanError(
                    f"the plan has {len(specs)} steps, more than the limit of "
                    f"max_steps={self.max_steps} (raise it with Mission(max_steps=...))"
                )
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
        if isinstance(goal, dict) and "$large" in goal:
            goal = "(a large goal, read from its file)"  # resume() reads it
        if not isinstance(goal, str) or not goal:
            raise checkpoint.CheckpointError(f"mission file {path} has no goal")
        return cls(goal, **kwargs).resume(path)

    def load_state(
        self, data: Mapping[str, Any], source: str = "state", *, final: bool = False
    ) -> None:
        """Apply saved state (see :meth:`to_dict`) to this mission (see
        :func:`.checkpoint.apply_state`)."""
        checkpoint.apply_state(self, data, source, final=final)

    # A running mission keeps its checkpoint file current (when ``checkpoint_path`` is set):
    # a full write when the steps are known, a journal line per finished step, a full write
    # at the end (see :class:`.checkpoint.Checkpointer`).

    def _open_checkpoint(self) -> None:
        if self.checkpoint_path:
            if self._checkpointer is not None:  # left open by a run that was interrupted
                self._checkpointer.close()
            self._checkpointer = checkpoint.Checkpointer(self, self.checkpoint_path)
            self._checkpointer.save_full()

    def checkpoint_step(self, step: MissionStep) -> None:
        """Record ``step``'s state in the checkpoint (O(that step))."""
        if self._checkpointer is not None:
            self._checkpointer.step_finished(step)

    def _close_checkpoint(self) -> None:
        writer, self._checkpointer = self._checkpointer, None
        if writer is None and self.checkpoint_path:
            writer = checkpoint.Checkpointer(self, self.checkpoint_path)
        if writer is not None:
            writer.close()

    # -- the goal: a large one may be held as a reference to its file (see share_large_goal) ----

    #: The goal; a large one may be held as a reference to its file, read when asked.
    goal = LoadedWhenRead("_goal")

    def stored_goal(self) -> Any:
        """The goal as held: a :class:`LargeValue` reference is not loaded."""
        return self._goal

    # -- the id: a plain name wherever it is set (it becomes file names in a store) -----------

    @property
    def id(self) -> str:
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = validate_mission_id(value)

    # -- pickling (missions travel to worker processes) ----------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in (
            "_lock",
            "_sinks",
            "_hook_sink",
            "_cancel",
            "_last_progress_emit",
            "_checkpointer",
        ):
            state.pop(key, None)
        state["decision_source"] = None  # set by the runtime where the mission runs
        ref = state.pop("_goal_ref", None)
        if ref is not None:  # the large goal travels as a reference to its one file
            state["_goal"] = ref
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = upgraded_state(state, _RENAMED, Mission, "template", auto_plan=False)
        self.__dict__.update(state, _id=validate_mission_id(state["_id"]))  # it names files
        self.status = MissionStatus(self.status)  # an older release's was a string
        self.steps = self._steps  # its tally and index follow the steps, as pickled or not
        self._init_runtime_state()

    def __repr__(self) -> str:
        n = len(self.steps) if self.steps else 0
        return f"Mission({self.id!r}, goal={self.goal!r}, status={str(self.status)!r}, steps={n})"
