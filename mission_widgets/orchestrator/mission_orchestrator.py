"""MissionOrchestrator: queue, sliding concurrency window, cancel, reconcile, status().

Missions run elsewhere (a worker process by default) and report into the SQLite store, whose
event stream is the truth. The orchestrator's mirrors of them (``mirror.StoreMirror``) are
kept current by a watcher thread while anything is in flight (``watcher.Watcher``), which
also refills the window, so nothing needs polling and the kernel is never blocked; a
restarted kernel attaches to the same store and finds everything again.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.budget import Budget, SharedLedger
from ..core.errors import MissionValidationError, ModelResolutionError, describe_error
from ..core.mission import MISSION_STATUSES, Mission, new_mission_id
from ..core.models import model_label
from ..core.session import SharedSession
from ..core.status import MissionStatus
from ..runtime.backend import Backend
from ..runtime.processes import owner_token
from ..runtime.registry import make_backend
from ..runtime.store import MissionStore
from .blocking import abandon, interrupted, track
from .cancellation import is_queued
from .control import MissionControl
from .finished import MissionsView
from .handles import AsyncHandle, MissionFailed, PollResult
from .health import DEFAULT_NO_PROGRESS_SECS, HEALTH_PERIOD_SECS
from .mirror import StoreMirror
from .options import check_backend_options, check_numbers, check_store
from .queues import OPEN, SharedQueues
from .status_table import StatusTable
from .views import MissionViews, live_spans, open_ledger
from .watcher import Subscribers, Watcher

if TYPE_CHECKING:
    import pandas as pd

    from ..widgets import MissionPanel
    from .mission_index import MissionIndex

__all__ = ["AsyncHandle", "MissionFailed", "MissionOrchestrator", "PollResult"]

#: Seconds between store reads while run_all()/wait() block (a worker exit wakes them sooner).
POLL_INTERVAL = 0.2

_INSTANCES = itertools.count(1)


# Who owns which state (tests/structure/test_orchestrator_state.py keeps this true: every
# attribute is bound in exactly one of the three files, and MissionControl binds none).
#
#   mission_orchestrator.py  configuration (max_concurrent, heartbeat_*, cancel_grace_secs,
#                            global_model/session), store, backend, the queue and the window
#                            (pending_queue, running, async_handles, _draining, _owner,
#                            _from_queue), the lock and wake-ups, the watcher, subscribers and
#                            the status table.
#   mirror.py (StoreMirror)  what the store said: _missions, _order, completed, _cursor,
#                            _replayed, _backend_of, _stall_flags, _waiting_on, _since_poll,
#                            _owners_seen, _cancelling, _cancel_owed, _gone_since,
#                            _cancel_requested.
#   control.py (MissionControl) no state: the user's actions (cancel, decide, explain, forget,
#                            reconcile) on the state above, read under the orchestrator's lock.
#   views.py (MissionViews)  no state: timeline(), export_trace(), export_spans(), read from
#                            the store's events alone.
#
# Why mixins and not objects: every public method of the documented API is a method of
# MissionOrchestrator, and the refresh, the window refill and the actions all run under one
# lock over one set of mirrors. Splitting the class by file keeps each file about one job
# without a delegation layer; the rule above keeps one owner per piece of state.
class MissionOrchestrator(StoreMirror, MissionControl, SharedQueues, MissionViews):
    """Runs many missions with at most ``max_concurrent`` at once, without blocking the kernel.

    ``max_concurrent`` counts the missions this orchestrator started (its queue's and
    ``run_async``'s); missions of other processes on the same store are mirrored (shown in
    ``running``, ``status()`` and the panel) but take none of its slots.

    ``backend`` is ``"subprocess"`` (default: a worker process per mission that survives the
    kernel), ``"thread"`` or ``"dask"`` (pass ``client=``). ``store`` is a directory, a store
    name, or None for the default store; a new orchestrator on the same store reattaches to
    every mission in it. Missions share a session only when ``session=`` is given.

    ``budget=Budget(...)`` limits the model calls of all the missions this orchestrator (and
    its clones) submits together, checked before each call like a mission's own budget (see
    :mod:`..core.budget`; ``budget_used()`` says what was used). Missions of other
    orchestrators on the store do not count; a new orchestrator (a restarted kernel) given a
    budget starts a new one, and the missions it adopts keep counting against theirs.
    """

    def __init__(
        self,
        max_concurrent: int = 3,
        model: Any = None,
        session: SharedSession | None = None,
        *,
        backend: str | Backend = "subprocess",
        store: str | os.PathLike | MissionStore | None = None,
        heartbeat_secs: float = 2.0,
        heartbeat_timeout_secs: float | None = None,
        no_progress_secs: float = DEFAULT_NO_PROGRESS_SECS,
        cancel_grace_secs: float = 3.0,
        budget: Budget | Mapping[str, Any] | None = None,
        tracer_provider: Any = None,
        _clone_of: set[str] | None = None,
        **backend_options: Any,
    ) -> None:
        if session is not None and not isinstance(session, SharedSession):
            raise TypeError(f"session must be a SharedSession, got {type(session).__name__}")
        check_store(store)
        check_backend_options(backend, backend_options)
        budget = Budget.coerce(budget, "MissionOrchestrator(budget=...)")  # checked first
        heartbeat_secs, heartbeat_timeout_secs, cancel_grace_secs, quiet = check_numbers(
            heartbeat_secs, heartbeat_timeout_secs, cancel_grace_secs, no_progress_secs
        )
        self._wakeup = threading.Condition()
        self._wakeups = 0  # counts _wake() calls, so a wake between poll and wait is not lost
        self._lock = threading.RLock()
        self._max_concurrent = 1
        self._watcher: Watcher | None = None
        self._health: Watcher | None = None
        self.max_concurrent = max_concurrent
        self.global_model = model
        #: None unless given: missions are isolated (aisdk), each with a session of its own.
        self.global_session = session
        self.heartbeat_secs = float(heartbeat_secs)
        self.heartbeat_timeout_secs = (
            float(heartbeat_timeout_secs)
            if heartbeat_timeout_secs is not None
            else max(10.0, 5 * self.heartbeat_secs)
        )
        self.no_progress_secs = quiet  #: seconds with no event before a "no_progress" flag
        self.cancel_grace_secs = float(cancel_grace_secs)
        self.store = store if isinstance(store, MissionStore) else MissionStore(store)
        self.backend = make_backend(backend, self.store, self._on_worker_exit, **backend_options)
        self._backend_spec = backend
        self._backend_options = backend_options
        self._budget_ledger: SharedLedger | None = open_ledger(self.backend, budget)  # views.py
        self._live_spans = live_spans(tracer_provider, self.store)  # views.py, otel_live.py
        self.pending_queue: list[Mission] = []
        self.running: list[Mission] = []
        self.async_handles: dict[str, AsyncHandle] = {}
        self._draining = False
        #: Missions the window started from the queue (start_queued, run_all), by id, so that
        #: run_all() after start_queued() waits for them too.
        self._from_queue: dict[str, Mission] = {}
        #: Who owns and claims this orchestrator's queue: its process plus an instance
        #: number, so a clone in the same process never starts the same row.
        self._owner = f"{owner_token()}:{next(_INSTANCES)}"
        self._subscribers: Subscribers[PollResult] = Subscribers()
        self._status_table = StatusTable(self.store)
        #: The owners of this orchestrator's family (itself, its clones, what it is a clone
        #: of; one set shared by all): they share a queue on purpose, none adopts another's.
        self._siblings: set[str] = set() if _clone_of is None else _clone_of
        self._siblings.add(self._owner)
        self._init_mirror()
        self._watcher = Watcher(self._watch, lambda: self.active)
        # The health monitor: nothing wakes it, so its period is fixed (see health.py).
        self._health = Watcher(
            self._health_tick, lambda: self.active, name="health", interval=HEALTH_PERIOD_SECS
        )
        self._attach()
        OPEN[self._owner] = self
        if self.running:
            self._ensure_watching()
        if _clone_of is None:
            self._report_queues_left()
        track(self)  # a script that exits while missions run says so

    # -- configuration --------------------------------------------------------------------

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    @max_concurrent.setter
    def max_concurrent(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"max_concurrent must be a positive int, got {value!r}")
        self._max_concurrent = value
        self._wake()

    @property
    def missions(self) -> MissionsView:
        """Every mission this orchestrator knows, by id, in submission order (from this
        kernel and the store); a finished mission's mirror is built when first read."""
        return MissionsView(self._order, self.get)

    @property
    def active(self) -> bool:
        """Whether missions are running, or queued missions are being started."""
        return bool(self.running) or (bool(self.pending_queue) and self._draining)

    @property
    def watching(self) -> bool:
        """Whether the watcher thread runs (it does while anything is in flight)."""
        return self._watcher is not None and self._watcher.running

    def get(self, mission_id: str) -> Mission:
        mission = self._missions.get(mission_id)
        if mission is not None:
            return mission
        if self.completed.has(mission_id):
            return self.completed.mission(mission_id)
        raise KeyError(f"no mission {mission_id!r} in store {self.store.root}")

    # -- submitting -------------------------------------------------------------------------

    def _prepare(self, mission: Mission, model: Any = None) -> Mission:
        """Checks at submit: the type, the settings it inherits, what can be checked now.

        Model precedence (aisdk): ``model`` (of run_all/run_async) > the mission's > the
        orchestrator's. A mission with no model anywhere is accepted here and refused when
        it starts (a later run_all(model=...) may still give it one).
        """
        if not isinstance(mission, Mission):
            raise TypeError(f"submit() takes a Mission, got {type(mission).__name__}: {mission!r}")
        if mission.is_finished or self.completed.has(mission.id):
            row = None if mission.is_finished else self.store.row(mission.id)
            status = mission.status if row is None else row["status"]
            raise MissionValidationError(
                f"mission {mission.id} has already ended ({status}): a mission runs once, "
                "whatever its end (succeeded, failed, stalled or cancelled). To run it again, "
                "submit a new Mission with the same goal and steps."
            )
        if model is not None:
            mission.model = model
        elif mission.model is None and self.global_model is not None:
            mission.model = self.global_model
        mission.shared_budget = self._budget_ledger  # before its payload is written (check)
        if self.global_session is not None and not mission.session_given:
            mission.session = self.global_session
            mission.session_given = True
        try:
            mission.preflight()
        except ModelResolutionError:
            if mission.model is not None:
                raise  # a model that cannot resolve: say so now
        return mission

    def submit(self, mission: Mission) -> MissionOrchestrator:
        """Queue a mission (checked now: type, picklability). Returns self."""
        with self._lock:
            if mission in self.pending_queue or mission in self.running:
                raise ValueError(f"mission {getattr(mission, 'id', mission)} is already queued")
            self._prepare(mission)
            self._register(mission, self.backend.name)
            self.pending_queue.append(mission)
        self._changed()
        return self

    def _register(self, mission: Mission, backend: str) -> None:
        """Record the mission, then write its files (the backend's check: the payload a
        worker loads). Record first: a submit the store refuses (locked, full) leaves no
        file, and a file in the store always has its row, so a repair never brings back a
        mission that was never submitted. When the files cannot be written, the row goes."""
        self.store.register(
            mission.id,
            mission.goal,
            backend=backend,
            owner=self._owner,
            n_steps=len(mission.steps or []),
            model=model_label(mission.model),
        )
        try:
            self.backend.check(mission)
        except BaseException:
            self.store.unregister(mission.id)
            raise
        self._know(mission)
        self._backend_of[mission.id] = backend
        self.completed.discard(mission.id)

    def _start(self, mission: Mission) -> AsyncHandle:
        """Launch ``mission`` (the caller holds the lock). A mission that still has no model
        it needs is refused here, before anything launches."""
        mission.preflight()
        mission.audit_log = [] if not self.backend.runs_in_kernel else mission.audit_log
        mission.status = MissionStatus.PENDING
        mission.finished_at = None
        mission.stall_reason = None
        pid = self.backend.launch(mission, self.heartbeat_secs)
        handle = AsyncHandle(self, mission, pid)
        self.async_handles[mission.id] = handle
        self.running.append(mission)
        self._ensure_watching()
        return handle

    def run_async(self, mission: Mission, model: Any = None) -> AsyncHandle:
        """Start ``mission`` now (outside the window) and return its handle at once.

        A mission that cannot start (no model) gets a handle that is already done: its
        ``result()`` raises :class:`MissionFailed` with the reason; nothing was launched.
        """
        with self._lock:
            if mission in self.pending_queue:
                self.pending_queue.remove(mission)
            elif mission in self.running:
                raise ValueError(f"mission {mission.id} is already running")
            self._prepare(mission, model)
            self._register(mission, self.backend.name)
            try:
                handle = self._start(mission)
            except Exception as exc:
                self._end_unstarted(
                    mission, MissionStatus.FAILED, f"could not start: {describe_error(exc)}"
                )
                handle = AsyncHandle(self, mission, None)
                self.async_handles[mission.id] = handle
                handle.settle()
        self._changed()
        return handle

    def start_queued(self) -> list[Mission]:
        """Start queued missions within the window; the watcher keeps topping it up. The
        queue of an orchestrator of this process that was closed or dropped (its cell run
        again) is adopted first."""
        self._adopt_left_here()
        with self._lock:
            self._draining = True
            started = self._fill_window()
            if self.active:
                self._ensure_watching()
        self._changed(PollResult(started=started, still_running=len(self.running)))
        return started

    @property
    def window_used(self) -> int:
        """Slots of the window in use: the running missions this orchestrator started.
        Missions of other processes (or of a kernel before a restart) that it mirrors are
        shown in ``running`` but take no slot: ``max_concurrent`` limits what it starts."""
        return sum(1 for m in self.running if m.id in self.async_handles)

    def _fill_window(self) -> list[Mission]:
        started = []
        for mission_id, mission in list(self._from_queue.items()):
            if mission not in self.running:
                del self._from_queue[mission_id]  # ended: nothing left to wait for
        used = self.window_used
        while self.pending_queue and used < self.max_concurrent:
            mission = self.pending_queue.pop(0)
            if not self.store.claim(mission.id, self._owner):
                self._claimed_elsewhere(mission)
                continue
            try:
                self._start(mission)
            except Exception as exc:
                self._end_unstarted(
                    mission, MissionStatus.FAILED, f"could not start: {describe_error(exc)}"
                )
                continue
            used += 1
            started.append(mission)
            self._from_queue[mission.id] = mission
        if not self.pending_queue:
            self._draining = False
        return started

    def _claimed_elsewhere(self, mission: Mission) -> None:
        """Another orchestrator claimed (or cancelled) this queued mission first: mirror it
        from the store like any mission of another process."""
        self._missions.pop(mission.id, None)
        self._backend_of.pop(mission.id, None)
        row = self.store.row(mission.id)
        if row is not None and not is_queued(row):
            self._adopt_row(row)

    # -- refreshing -------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[PollResult], None]) -> Callable[[], None]:
        """Call ``callback(change)`` after every refresh that changed something and after a
        submit or cancel (from the watcher thread, never holding the orchestrator's lock);
        returns the function that unsubscribes it."""
        return self._subscribers.subscribe(callback)

    def _changed(self, change: PollResult | None = None) -> None:
        self._subscribers.notify(change if change is not None else PollResult())

    def _ensure_watching(self) -> None:
        """Start the watcher and the health monitor unless they run (they stop when idle)."""
        for watcher in (self._watcher, self._health):
            if watcher is not None:
                watcher.ensure_running()

    def _watch(self) -> None:
        """One refresh of the watcher: tell subscribers when it changed something."""
        change = self._refresh()
        while self._cancel_requested:
            self.cancel(self._cancel_requested.pop())
        if self.active:
            self._ensure_watching()  # it adopted running missions of another process
        if change.changed:
            self._changed(change)

    def poll_async(self) -> PollResult:
        """Refresh now and return what changed since the previous ``poll_async()`` (missions
        that completed or started, events read) and how many are still running."""
        self._watch()
        with self._lock:
            result = self._take_since_poll()
            result.still_running = len(self.running)
        return result

    def _on_worker_exit(self, mission_id: str) -> None:
        self._wake()

    def _wake(self) -> None:
        if self._watcher is not None:
            self._watcher.wake()
        with self._wakeup:
            self._wakeups += 1
            self._wakeup.notify_all()

    def _end_unstarted(self, mission: Mission, status: MissionStatus, error: str) -> None:
        """End a mission taken off the queue before it ran (its event follows on refresh)."""
        self.store.finish_if_unfinished(mission.id, status, error)
        mission.status, mission.error = status, error
        mission.finished_at = time.time()
        self.completed.append(mission)

    # -- waiting ----------------------------------------------------------------------------

    def _wait_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = self._wakeups
            self._watch()
            if done():
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            with self._wakeup:
                if self._wakeups == seen:
                    self._wakeup.wait(
                        POLL_INTERVAL if remaining is None else min(POLL_INTERVAL, remaining)
                    )

    def wait(self, mission_id: str, timeout: float | None = None) -> Mission:
        """Block until mission ``mission_id`` ends; TimeoutError after ``timeout`` seconds.

        Ctrl-C raises :class:`~mission_widgets.orchestrator.blocking.MissionsInterrupted`
        (a KeyboardInterrupt) saying the mission still runs: waiting cancels nothing.
        """
        mission = self.get(mission_id)
        try:
            ended = self._wait_until(
                lambda: mission.is_finished and mission not in self.running, timeout
            )
        except KeyboardInterrupt:
            raise self._interrupted("wait()", [mission]) from None
        if not ended:
            raise TimeoutError(f"mission {mission_id} still {mission.status} after {timeout} s")
        return mission

    def wait_all(self, timeout: float | None = None) -> list[Mission]:
        """Block until nothing is in flight: every queued mission has been started (within
        the window, as :meth:`start_queued` does) and has ended, and so has every running one
        (started here by :meth:`run_async`, :meth:`start_queued` or :meth:`run_all`, or found
        running in the store when this orchestrator attached). A mission that waits for a
        person's decision keeps it waiting. Returns the missions that were in flight when
        it was called, in submission order.

        The call for scripts: ``start_queued()`` (or ``run_async``) then ``wait_all()``.
        :meth:`run_all` is the same for the queue alone, except that Ctrl-C there cancels
        what it ran; here it cancels nothing (``MissionsInterrupted`` says what still runs).
        TimeoutError after ``timeout`` seconds, naming what still runs; nothing is cancelled.
        """
        with self._lock:
            batch = self._in_submission_order([*self.running, *self.pending_queue])
        if self.pending_queue:
            self.start_queued()
        try:
            ended = self._wait_until(lambda: not self.running and not self.pending_queue, timeout)
        except KeyboardInterrupt:
            raise self._interrupted("wait_all()", list(self.running)) from None
        if not ended:
            left = self._in_submission_order([*self.running, *self.pending_queue])
            raise TimeoutError(
                f"wait_all(): {len(left)} missions still in flight after {timeout} s: "
                + ", ".join(m.id for m in left[:5])
                + (" ..." if len(left) > 5 else "")
            )
        return batch

    def run_all(self, model: Any = None) -> list[Mission]:
        """Run every queued mission through the sliding window and block until all end.

        ``model`` overrides the missions' own models for this run (aisdk). A new mission
        starts as soon as one finishes. Missions an earlier :meth:`start_queued` took from
        the queue are waited for too (so ``start_queued(); run_all()`` waits for all of
        them); missions started with :meth:`run_async` are not (:meth:`wait_all` waits for
        everything). Safe to call from a notebook cell (it does not need the event loop).
        Ctrl-C / kernel interrupt cancels what it ran and raises
        :class:`~mission_widgets.orchestrator.blocking.MissionsInterrupted` (a
        KeyboardInterrupt) saying what was cancelled and what still runs. Returns the
        missions it ran, in submission order.
        """
        batch = self._start_batch(model)
        try:
            self._wait_until(lambda: self._batch_done(batch), None)
        except KeyboardInterrupt:
            raise self._abandon_batch(batch, "run_all()") from None
        except BaseException:
            self._abandon_batch(batch, "run_all()")
            raise
        return batch

    async def arun_all(self, model: Any = None) -> list[Mission]:
        """``await orch.arun_all()``: run_all that leaves the notebook's event loop free."""
        batch = self._start_batch(model)
        try:
            while not self._batch_done(batch):
                await asyncio.sleep(POLL_INTERVAL)
                self._watch()
        except KeyboardInterrupt:
            raise self._abandon_batch(batch, "arun_all()") from None
        except BaseException:
            self._abandon_batch(batch, "arun_all()")
            raise
        return batch

    def _start_batch(self, model: Any) -> list[Mission]:
        """What run_all and arun_all run: the queue and what the window already took from
        it, with ``model`` over their own (for those not started yet)."""
        self._adopt_left_here()
        with self._lock:
            queued = list(self.pending_queue)
            if model is not None:
                for mission in queued:
                    mission.model = model
            started = [m for m in self._from_queue.values() if m in self.running]
            batch = self._in_submission_order([*started, *queued])
        self.start_queued()
        return batch

    def _in_submission_order(self, missions: list[Mission]) -> list[Mission]:
        unique, last = {m.id: m for m in missions}, len(self._order)  # unknown ones: last
        return sorted(unique.values(), key=lambda m: self._order.position(m.id, last))

    def _batch_done(self, batch: list[Mission]) -> bool:
        return not self.pending_queue and all(
            m.is_finished and m not in self.running for m in batch
        )

    def _abandon_batch(self, batch: list[Mission], call: str) -> BaseException:
        """Interrupted: stop draining, cancel what of ``batch`` is queued or running, and
        return the summary to raise (what was cancelled, what else still runs)."""
        self._draining = False
        return abandon(self, batch, call)

    def _interrupted(self, call: str, still_running: list[Mission]) -> BaseException:
        return interrupted(
            call,
            self.store.root,
            still_running=[m for m in still_running if not m.is_finished],
            queued=list(self.pending_queue),
        )

    # -- views --------------------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per mission in the store: id, goal, status (categorical), n_steps, n_done,
        progress, started_at/finished_at (datetimes, UTC), elapsed_s, backend, pid,
        last_heartbeat, error, ..., waiting_on (the step a mission waits on for a person's
        decision, else None); in submission order.

        Read from the store alone, without the orchestrator's lock: it answers at once even
        while the watcher waits on a store that a stopped worker holds.
        """
        return self._status_table.frame(dict(self._waiting_on))

    def counts(self) -> dict[str, int]:
        """Missions by status, counted over the rows ``status()`` shows (the store's), so
        the two always agree: also other orchestrators' queued missions. One forgotten by
        another process is in neither (nor in ``completed``), even if it ended unread here."""
        counts = dict.fromkeys(MISSION_STATUSES, 0)
        for status, n in self.store.status_counts().items():
            counts[status] = counts.get(status, 0) + n
        return counts

    def mission_statuses(self) -> dict[str, str]:
        """Every mission's status by id, in submission order, without loading any."""
        return self.mission_index().statuses()

    def mission_index(self) -> MissionIndex:
        """Ids by submission and status as they change (the panel's); running ones' brought in."""
        for mission in list(self.running):
            self._order.set_live(mission.id, str(mission.status), self.completed.has)
        return self._order

    def clone(self, deep: bool = False) -> MissionOrchestrator:
        """A new orchestrator with the same settings and store.

        The queue is copied (same Mission objects, or deep copies with ``deep=True``, which
        also copies the global session). Running and finished missions stay with the store,
        which the clone reads like any orchestrator.
        """
        session = copy.deepcopy(self.global_session) if deep else self.global_session
        # Deep copies of missions that use the global session use the clone's session.
        memo: dict[int, Any] = {id(self.global_session): session} if session is not None else {}
        twin = MissionOrchestrator(
            self.max_concurrent,
            self.global_model,
            session,
            backend=self._backend_spec if isinstance(self._backend_spec, str) else self.backend,
            store=self.store,
            heartbeat_secs=self.heartbeat_secs,
            heartbeat_timeout_secs=self.heartbeat_timeout_secs,
            no_progress_secs=self.no_progress_secs,
            cancel_grace_secs=self.cancel_grace_secs,
            _clone_of=self._siblings,  # the clone submits this queue itself
            **self._backend_options,
        )
        twin._budget_ledger = self._budget_ledger  # one family, one budget
        for mission in self.pending_queue:
            if deep:
                mission = copy.deepcopy(mission, memo)
                mission.id = new_mission_id()  # unique: a store row, log and file of its own
            twin.submit(mission)
        return twin

    def panel(self, **options: Any) -> MissionPanel:
        from ..widgets import MissionPanel

        return MissionPanel(self, **options)

    def close(self) -> None:
        """Stop the watcher and release the backend's helpers (missions keep running, the
        store keeps them; its queue is adopted by the next orchestrator on the store)."""
        OPEN.pop(self._owner, None)
        for watcher in (self._watcher, self._health):
            if watcher is not None:
                watcher.close()
        self.backend.shutdown()

    def __repr__(self) -> str:
        return (
            f"MissionOrchestrator(max_concurrent={self.max_concurrent}, "
            f"backend={self.backend.name!r}, store={str(self.store.root)!r}, "
            f"pending={len(self.pending_queue)}, running={len(self.running)}, "
            f"completed={len(self.completed)})"
        )
