"""MissionOrchestrator: queue, sliding concurrency window, poll, reconcile, cancel, status().

Missions run elsewhere (a worker process by default) and report into the SQLite store; the
orchestrator reads that stream (``poll_async``) to keep in-kernel mirrors of them up to
date, so the kernel is never blocked and a restarted kernel can attach to the same store and
find everything again.
"""

from __future__ import annotations

import asyncio
import copy
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .core.errors import MissionError, describe_error
from .core.mission import MISSION_STATUSES, Mission, new_mission_id
from .core.models import model_label, resolve_model
from .core.replay import apply_event
from .core.session import SharedSession
from .runtime.backend import Backend
from .runtime.payload import read_payload
from .runtime.processes import owner_alive, owner_token
from .runtime.registry import backend_for_row, make_backend
from .runtime.store import STATUS_COLUMNS, MissionStore, StoreError

if TYPE_CHECKING:
    import pandas as pd

    from .widgets import MissionPanel

#: Seconds between store reads while run_all()/wait() block (a worker exit wakes them sooner).
POLL_INTERVAL = 0.2


@dataclass
class PollResult:
    """What :meth:`MissionOrchestrator.poll_async` found."""

    completed: list[Mission] = field(default_factory=list)
    still_running: int = 0
    started: list[Mission] = field(default_factory=list)
    n_events: int = 0


class AsyncHandle:
    """A running mission: ``mission_id``, ``pid``, ``checkpoint_path``, ``wait()``, ``cancel()``."""

    def __init__(self, orchestrator: MissionOrchestrator, mission: Mission, pid: int | None):
        self._orchestrator = orchestrator
        self.mission = mission
        self.mission_id = mission.id
        self.pid = pid
        self.checkpoint_path = str(orchestrator.store.checkpoint_file(mission.id))
        self.log_path = str(orchestrator.store.log_file(mission.id))

    @property
    def done(self) -> bool:
        return self.mission.is_finished and self.mission not in self._orchestrator.running

    @property
    def status(self) -> str:
        return self.mission.status

    def wait(self, timeout: float | None = None) -> Mission:
        """Block until the mission ends (polling the store); TimeoutError after ``timeout``."""
        return self._orchestrator.wait(self.mission_id, timeout=timeout)

    def cancel(self) -> bool:
        return self._orchestrator.cancel(self.mission_id)

    def __repr__(self) -> str:
        return f"AsyncHandle({self.mission_id!r}, pid={self.pid}, status={self.status!r})"


class MissionOrchestrator:
    """Runs many missions with at most ``max_concurrent`` at once, without blocking the kernel.

    ``backend`` is ``"subprocess"`` (default: a worker process per mission that survives the
    kernel), ``"thread"`` or ``"dask"`` (pass ``client=``). ``store`` is a directory, a store
    name, or None for the default store (``$MISSION_WIDGETS_STORE`` or
    ``~/.local/state/mission_widgets/default``); a new orchestrator on the same store
    reattaches to every mission in it.
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
        cancel_grace_secs: float = 3.0,
        **backend_options: Any,
    ) -> None:
        if session is not None and not isinstance(session, SharedSession):
            raise TypeError(f"session must be a SharedSession, got {type(session).__name__}")
        if not isinstance(heartbeat_secs, int | float) or heartbeat_secs <= 0:
            raise ValueError(f"heartbeat_secs must be a positive number, got {heartbeat_secs!r}")
        self._wakeup = threading.Condition()
        self._wakeups = 0  # counts _wake() calls, so a wake between poll and wait is not lost
        self._lock = threading.RLock()
        self._max_concurrent = 1
        self.max_concurrent = max_concurrent
        self.global_model = model
        self.global_session = session if session is not None else SharedSession(model=model)
        self.heartbeat_secs = float(heartbeat_secs)
        self.heartbeat_timeout_secs = (
            float(heartbeat_timeout_secs)
            if heartbeat_timeout_secs is not None
            else max(10.0, 5 * self.heartbeat_secs)
        )
        self.cancel_grace_secs = float(cancel_grace_secs)
        self.store = store if isinstance(store, MissionStore) else MissionStore(store)
        self.backend = make_backend(backend, self.store, self._on_worker_exit, **backend_options)
        self._backend_spec = backend
        self._backend_options = backend_options
        self.pending_queue: list[Mission] = []
        self.running: list[Mission] = []
        self.completed: list[Mission] = []
        self.async_handles: dict[str, AsyncHandle] = {}
        self._missions: dict[str, Mission] = {}
        self._backend_of: dict[str, str] = {}
        self._draining = False
        self._owner = owner_token()
        self._cursor = 0
        #: mission id -> seq of the last event replayed from the store when it was adopted;
        #: poll_async skips those events (they are already in the mirror).
        self._replayed: dict[str, int] = {}
        self._listeners: list[Callable[[], None]] = []
        self._status_cache: tuple[tuple, pd.DataFrame] | None = None
        self._attach()

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
    def missions(self) -> dict[str, Mission]:
        """Every mission this orchestrator knows, by id (from this kernel and the store)."""
        return dict(self._missions)

    @property
    def active(self) -> bool:
        """Whether missions are running, or queued missions are being started."""
        return bool(self.running) or (bool(self.pending_queue) and self._draining)

    def get(self, mission_id: str) -> Mission:
        try:
            return self._missions[mission_id]
        except KeyError:
            raise KeyError(f"no mission {mission_id!r} in store {self.store.root}") from None

    # -- reattach ---------------------------------------------------------------------------

    def _attach(self) -> None:
        """Load every mission of the store: finished ones, running ones, orphaned queues."""
        self._cursor = self.store.max_seq()
        for row in self.store.rows():
            try:
                self._adopt_row(row)
            except Exception as exc:  # one broken mission must not hide the others
                warnings.warn(
                    f"mission {row['id']} in {self.store.root} cannot be loaded: "
                    f"{describe_error(exc)}",
                    RuntimeWarning,
                    stacklevel=3,
                )

    def _adopt_row(self, row: dict[str, Any]) -> None:
        mission_id = row["id"]
        if mission_id in self._missions:
            return
        status = row["status"]
        # A pending row with a pid was handed to a backend (a worker starting, a Dask task
        # queued): it is running, not queued -- launching it again would run it twice.
        if status == "pending" and row.get("started_at") is None and row.get("pid") is None:
            if owner_alive(row.get("owner")):
                return  # another live orchestrator's queue
            mission = self._load_pending(row)
            if mission is not None:
                self._missions[mission_id] = mission
                self.pending_queue.append(mission)
                self._backend_of[mission_id] = row.get("backend") or self.backend.name
            elif (failed := self.store.row(mission_id)) and failed["status"] != "pending":
                self._adopt_row(failed)  # its file was unreadable: show it failed now
            return
        mission = Mission(row["goal"], mission_id=mission_id, auto_plan=False)
        events = self.store.events_for(mission_id)
        for event in events:
            apply_event(mission, event)
        self._replayed[mission_id] = max((e.get("seq") or 0 for e in events), default=0)
        _note_store_errors(mission)
        # The row may predate the last events read (a worker that just finished).
        finished = row.get("finished_at") is not None or mission.finished_at is not None
        if finished:
            self._apply_final_state(mission)
        self._missions[mission_id] = mission
        self._backend_of[mission_id] = row.get("backend") or "?"
        if finished:
            self.completed.append(mission)
        else:
            self.running.append(mission)

    def _load_pending(self, row: dict[str, Any]) -> Mission | None:
        path = self.store.mission_file(row["id"])
        try:
            mission = read_payload(path)["mission"]
        except MissionError as exc:
            self._finish(row["id"], "failed", str(exc))
            return None
        self.store.register(
            mission.id,
            mission.goal,
            backend=row.get("backend") or self.backend.name,
            owner=self._owner,
            n_steps=len(mission.steps or []),
            model=row.get("model"),
        )
        return mission

    def _apply_final_state(self, mission: Mission) -> None:
        try:
            state = self.store.final_state(mission.id)
        except StoreError as exc:
            mission.error = str(exc)
            return
        if state is not None:
            mission.load_state(state, source=f"store {self.store.root}", final=True)
        _note_store_errors(mission)

    # -- submitting -------------------------------------------------------------------------

    def _prepare(self, mission: Mission, model: Any = None) -> Mission:
        if not isinstance(mission, Mission):
            raise TypeError(f"submit() takes a Mission, got {type(mission).__name__}: {mission!r}")
        if mission.model is None:
            chosen = model if model is not None else self.global_model
            if chosen is not None:
                mission.model = resolve_model(chosen)
        if not mission.session_given:
            mission.session = self.global_session
            mission.session_given = True
        mission.preflight()
        self.backend.check(mission)
        return mission

    def submit(self, mission: Mission) -> MissionOrchestrator:
        """Queue a mission (checked now: type, model, picklability). Returns self."""
        with self._lock:
            if mission in self.pending_queue or mission in self.running:
                raise ValueError(f"mission {getattr(mission, 'id', mission)} is already queued")
            self._prepare(mission)
            self._register(mission, self.backend.name)
            self.pending_queue.append(mission)
        self._notify()
        return self

    def _register(self, mission: Mission, backend: str) -> None:
        self.store.register(
            mission.id,
            mission.goal,
            backend=backend,
            owner=self._owner,
            n_steps=len(mission.steps or []),
            model=model_label(mission.model),
        )
        self._missions[mission.id] = mission
        self._backend_of[mission.id] = backend
        if mission in self.completed:
            self.completed.remove(mission)

    def _start(self, mission: Mission) -> AsyncHandle:
        mission.audit_log = [] if not self.backend.runs_in_kernel else mission.audit_log
        mission.status = "pending"
        mission.finished_at = None
        mission.stall_reason = None
        pid = self.backend.launch(mission, self.heartbeat_secs)
        handle = AsyncHandle(self, mission, pid)
        self.async_handles[mission.id] = handle
        self.running.append(mission)
        self._notify()
        return handle

    def run_async(self, mission: Mission, model: Any = None) -> AsyncHandle:
        """Start ``mission`` now (outside the window) and return its handle at once."""
        with self._lock:
            if mission in self.pending_queue:
                self.pending_queue.remove(mission)
            elif mission in self.running:
                raise ValueError(f"mission {mission.id} is already running")
            self._prepare(mission, model)
            self._register(mission, self.backend.name)
            return self._start(mission)

    def start_queued(self) -> list[Mission]:
        """Start queued missions within the window and keep topping it up on every poll."""
        with self._lock:
            self._draining = True
            return self._fill_window()

    def _fill_window(self) -> list[Mission]:
        started = []
        while self.pending_queue and len(self.running) < self.max_concurrent:
            mission = self.pending_queue.pop(0)
            try:
                self._start(mission)
            except Exception as exc:
                self._end_unstarted(mission, "failed", f"could not start: {describe_error(exc)}")
                continue
            started.append(mission)
        if not self.pending_queue:
            self._draining = False
        return started

    # -- polling ----------------------------------------------------------------------------

    def _on_worker_exit(self, mission_id: str) -> None:
        self._wake()

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever missions are queued or started (views use it to wake)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception as exc:
                warnings.warn(
                    f"orchestrator listener {callback!r} failed: {describe_error(exc)}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _wake(self) -> None:
        with self._wakeup:
            self._wakeups += 1
            self._wakeup.notify_all()

    def _finish(self, mission_id: str, status: str, error: str | None) -> dict[str, Any] | None:
        return self.store.finish_if_unfinished(mission_id, status, error)

    def _end_unstarted(self, mission: Mission, status: str, error: str) -> None:
        """End a mission taken off the queue before it ran (its event follows on poll)."""
        self._finish(mission.id, status, error)
        mission.status, mission.error = status, error
        self.completed.append(mission)

    def _settle_from_row(self, mission: Mission) -> None:
        """End a mirror whose end is in the store row but not in its (corrupt) events."""
        row = self.store.row(mission.id) or {}
        if row.get("finished_at") is None:
            return
        mission.status = row.get("status") or "failed"
        mission.finished_at = row["finished_at"]
        mission.error = row.get("error")
        self._apply_final_state(mission)

    def poll_async(self) -> PollResult:
        """Read new events, update mirrors, detect dead workers, refill the window."""
        with self._lock:
            result = PollResult()
            # Liveness before events: a worker that wrote its last event and exited is fine.
            # One store read for every running mission's row, not one per mission.
            unended = [m for m in self.running if not _ended(m)]
            rows = self.store.rows_by_id(m.id for m in unended)
            gone = [m for m in unended if not self._alive(m, rows.get(m.id) or {})]
            events = self.store.events_since(self._cursor)
            while events:
                for seq, event in events:
                    self._cursor = seq
                    self._apply(event)
                result.n_events += len(events)
                events = self.store.events_since(self._cursor) if len(events) >= 5000 else []
            for mission in gone:
                if _ended(mission):
                    continue
                row = rows.get(mission.id) or {"id": mission.id}
                reason = backend_for_row(row, self.store, self.backend).exit_reason(row)
                tail = self.log_tail(mission.id, 1).strip()
                if tail:
                    reason += f"; last log line: {tail}"
                if self._finish(mission.id, "failed", reason) is None:
                    self._settle_from_row(mission)  # its final event was unreadable
            if gone:
                for seq, event in self.store.events_since(self._cursor):
                    self._cursor = seq
                    self._apply(event)
            for mission in list(self.running):
                if _ended(mission) and not self._final_event_pending(mission):
                    self.running.remove(mission)
                    self.completed.append(mission)
                    result.completed.append(mission)
                    self.backend.release(mission.id)
            if self._draining:
                result.started = self._fill_window()
            result.still_running = len(self.running)
            return result

    def _final_event_pending(self, mission: Mission) -> bool:
        """An in-kernel mission sets its end status a moment before its thread writes the
        final event to the store: it is not finished for the store's readers until then."""
        return (
            self.backend.runs_in_kernel
            and mission.id in self.async_handles
            and self.backend.is_alive({"id": mission.id, "backend": self.backend.name}) is True
            and (self.store.row(mission.id) or {}).get("finished_at") is None
        )

    def _alive(self, mission: Mission, row: dict[str, Any]) -> bool:
        if row.get("pid") is None:
            # Launched but not yet recorded, or queued by a dead kernel: judge by the owner.
            return mission.id in self.async_handles or owner_alive(row.get("owner"))
        # None: this process cannot tell (a Dask mission seen locally); heartbeats tell.
        return backend_for_row(row, self.store, self.backend).is_alive(row) is not False

    def _apply(self, event: dict[str, Any]) -> None:
        mission_id = event.get("mission_id")
        mission = self._missions.get(mission_id)
        if mission is None:
            row = self.store.row(mission_id)
            if row is None:
                return
            self._adopt_row(row)  # submitted by another orchestrator on this store
            return
        if (event.get("seq") or 0) <= self._replayed.get(mission_id, 0):
            return  # already replayed when the mission was adopted
        name = event.get("event")
        if name == "store_error":
            # The event is lost, not the mission: its worker goes on and the store row and
            # final state stay authoritative. Say so on the mirror instead of failing it.
            mission.audit_log.append(event)
            _note_store_errors(mission)
            return
        live = self.backend.runs_in_kernel and self._backend_of.get(mission_id) == "thread"
        if live and mission in self.running and name != "mission_stall":
            if name == "mission_done" and not mission.is_finished:
                apply_event(mission, event, record=False)  # ended by the kernel (cancel)
            return  # the object itself is running here and already has the event
        if live:
            apply_event(mission, event, record=False)
            return
        apply_event(mission, event)
        if name == "mission_done":
            self._apply_final_state(mission)

    # -- waiting ----------------------------------------------------------------------------

    def _wait_until(self, done, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            seen = self._wakeups
            self.poll_async()
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
        """Block until mission ``mission_id`` ends; TimeoutError after ``timeout`` seconds."""
        mission = self.get(mission_id)
        if not self._wait_until(
            lambda: mission.is_finished and mission not in self.running, timeout
        ):
            raise TimeoutError(f"mission {mission_id} still {mission.status} after {timeout} s")
        return mission

    def run_all(self, model: Any = None) -> list[Mission]:
        """Run every queued mission through the sliding window and block until all end.

        A new mission starts as soon as one finishes. Safe to call from a notebook cell (it
        does not need the event loop). Ctrl-C / kernel interrupt cancels what it started and
        re-raises. Returns the missions it ran, in submission order.
        """
        batch = self._start_batch(model)
        try:
            self._wait_until(lambda: self._batch_done(batch), None)
        except BaseException:
            self._abandon_batch(batch)
            raise
        return batch

    async def arun_all(self, model: Any = None) -> list[Mission]:
        """``await orch.arun_all()``: run_all that leaves the notebook's event loop free."""
        batch = self._start_batch(model)
        try:
            while not self._batch_done(batch):
                await asyncio.sleep(POLL_INTERVAL)
                self.poll_async()
        except BaseException:
            self._abandon_batch(batch)
            raise
        return batch

    def _start_batch(self, model: Any) -> list[Mission]:
        """What run_all and arun_all run: the queue, given ``model`` where it has none."""
        with self._lock:
            batch = list(self.pending_queue)
            if model is not None:
                for mission in batch:
                    if mission.model is None:
                        mission.model = resolve_model(model)
            self._draining = True
            self._fill_window()
        return batch

    def _batch_done(self, batch: list[Mission]) -> bool:
        return not self.pending_queue and all(
            m.is_finished and m not in self.running for m in batch
        )

    def _abandon_batch(self, batch: list[Mission]) -> None:
        """Interrupted: stop draining and cancel what of ``batch`` is queued or running."""
        self._draining = False
        for mission in batch:
            if mission in self.running or mission in self.pending_queue:
                self.cancel(mission.id)

    # -- stalls and cancel -------------------------------------------------------------------

    def stall_reasons(
        self,
        mission: Mission,
        row: dict[str, Any],
        now: float,
        stall_threshold_secs: float,
        heartbeat_timeout_secs: float,
        no_progress_secs: float,
    ) -> list[str]:
        """Why a running mission looks stalled (empty when it does not)."""
        reasons = []
        started = row.get("started_at")
        if started and now - started > stall_threshold_secs:
            reasons.append(
                f"running for {now - started:.0f} s, over the {stall_threshold_secs:g} s threshold"
            )
        if self.backend.has_heartbeat and row.get("pid") is not None:
            beat = row.get("last_heartbeat")
            if beat is not None and now - beat > heartbeat_timeout_secs:
                reasons.append(f"heartbeat lost: last beat {now - beat:.0f} s ago")
        activity = row.get("last_activity") or started
        if activity and now - activity > no_progress_secs:
            reasons.append(f"no progress for {now - activity:.0f} s")
        return reasons

    def reconcile(
        self,
        stall_threshold_secs: float = 600,
        *,
        heartbeat_timeout_secs: float | None = None,
        no_progress_secs: float | None = None,
        kill: bool = False,
    ) -> list[str]:
        """Flag running missions that look stuck as ``stalled``; return their ids.

        A mission is stalled when it runs longer than ``stall_threshold_secs``, when its
        heartbeat is older than ``heartbeat_timeout_secs`` (default: the orchestrator's), or
        when it made no progress (no event) for ``no_progress_secs`` (default: the threshold).
        With ``kill=True`` stalled missions are stopped and end ``stalled``.
        """
        self.poll_async()
        hb_timeout = (
            self.heartbeat_timeout_secs
            if heartbeat_timeout_secs is None
            else heartbeat_timeout_secs
        )
        quiet = stall_threshold_secs if no_progress_secs is None else no_progress_secs
        stalled = []
        now = time.time()
        with self._lock:
            rows = self.store.rows_by_id(m.id for m in self.running)
            for mission in list(self.running):
                if mission.is_finished and mission.status != "stalled":
                    continue
                row = rows.get(mission.id) or {}
                if row.get("finished_at") is not None:
                    continue
                reasons = self.stall_reasons(
                    mission, row, now, stall_threshold_secs, hb_timeout, quiet
                )
                if not reasons:
                    continue
                stalled.append(mission.id)
                if mission.status != "stalled":
                    self.store.flag_stalled(mission.id, "; ".join(reasons))
                if kill:
                    self._terminate(mission.id, row)
                    self._finish(mission.id, "stalled", "; ".join(reasons) + " (killed)")
        self.poll_async()
        return stalled

    def cancel(self, mission_id: str) -> bool:
        """Stop a queued or running mission: SIGTERM to its process group, SIGKILL after
        ``cancel_grace_secs``. Returns False when the mission had already finished."""
        with self._lock:
            mission = self.get(mission_id)
            if mission in self.pending_queue:
                self.pending_queue.remove(mission)
                self._end_unstarted(mission, "cancelled", "cancelled before it started")
                self.poll_async()
                return True
            if mission not in self.running:
                return False
            row = self.store.row(mission_id) or {}
        # Outside the lock: the grace period must not freeze other pollers (the panel).
        self._terminate(mission_id, row)
        self._finish(mission_id, "cancelled", "cancelled by user")
        self.poll_async()
        return True

    def _terminate(self, mission_id: str, row: dict[str, Any]) -> None:
        """Stop what executes a mission, by the backend that runs it (its store row says)."""
        row = {"id": mission_id, **row}
        backend_for_row(row, self.store, self.backend).stop(row, self.cancel_grace_secs)

    def cancel_all(self) -> list[str]:
        ids = [m.id for m in self.pending_queue + self.running]
        return [i for i in ids if self.cancel(i)]

    # -- views --------------------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per mission in the store: id, goal, status (categorical), n_steps, n_done,
        progress, started_at/finished_at (datetimes, UTC), elapsed_s, backend, pid,
        last_heartbeat, error, and more; in submission order.

        Finished rows never change, so their part of the frame is cached and only the
        unfinished rows are read again (fast for 10,000 missions).
        """
        import pandas as pd

        signature = self.store.finished_signature()
        cached = self._status_cache
        if cached is None or cached[0] != signature:
            cached = (signature, self._status_frame(self.store.status_records(finished=True)))
            self._status_cache = cached
        live = self._status_frame(self.store.status_records(finished=False))
        if live.empty:
            frame = cached[1]
        elif cached[1].empty:
            frame = live
        else:
            frame = pd.concat([cached[1], live], ignore_index=True)
            frame = frame.iloc[frame["rowid"].to_numpy().argsort(kind="stable")]
        order = [*STATUS_COLUMNS[:10], "elapsed_s", *STATUS_COLUMNS[10:]]
        return frame[order].reset_index(drop=True)

    @staticmethod
    def _status_frame(records: tuple[list[str], list[tuple]]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        columns, rows = records
        frame = pd.DataFrame.from_records(rows, columns=columns)
        # Fixed dtypes, so an empty store gives the same frame shape as a full one.
        for name in (
            "rowid",
            "n_steps",
            "n_done",
            "n_failed",
            "prompt_tokens",
            "completion_tokens",
        ):
            frame[name] = frame[name].astype("int64")
        frame["progress"] = frame["progress"].astype("float64")
        started = frame["started_at"].to_numpy(dtype="float64", na_value=np.nan)
        finished = frame["finished_at"].to_numpy(dtype="float64", na_value=np.nan)
        frame["elapsed_s"] = np.where(np.isnan(finished), time.time(), finished) - started
        for name in (
            "submitted_at",
            "started_at",
            "finished_at",
            "last_heartbeat",
            "last_activity",
        ):
            frame[name] = pd.to_datetime(
                frame[name].to_numpy(dtype="float64", na_value=np.nan), unit="s", utc=True
            ).as_unit("ns")
        frame["status"] = pd.Categorical(frame["status"], categories=MISSION_STATUSES)
        frame["pid"] = frame["pid"].astype("Int64")
        return frame

    def log_tail(self, mission_id: str, lines: int = 40) -> str:
        """The last ``lines`` lines of a mission's log (stdout/stderr of its worker)."""
        path = self.store.log_file(mission_id)
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 64 * 1024))
                data = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    def counts(self) -> dict[str, int]:
        """Missions by status (everything this orchestrator knows)."""
        counts = dict.fromkeys(MISSION_STATUSES, 0)
        for mission in self._missions.values():
            counts[mission.status] = counts.get(mission.status, 0) + 1
        return counts

    def clone(self, deep: bool = False) -> MissionOrchestrator:
        """A new orchestrator with the same settings and store.

        The queue is copied (same Mission objects, or deep copies with ``deep=True``, which
        also copies the global session). Running and finished missions stay with the store,
        which the clone reads like any orchestrator.
        """
        session = copy.deepcopy(self.global_session) if deep else self.global_session
        # Deep copies of missions that use the global session use the clone's session.
        memo: dict[int, Any] = {id(self.global_session): session}
        twin = MissionOrchestrator(
            self.max_concurrent,
            self.global_model,
            session,
            backend=self._backend_spec if isinstance(self._backend_spec, str) else self.backend,
            store=self.store,
            heartbeat_secs=self.heartbeat_secs,
            heartbeat_timeout_secs=self.heartbeat_timeout_secs,
            cancel_grace_secs=self.cancel_grace_secs,
            **self._backend_options,
        )
        for mission in self.pending_queue:
            if deep:
                mission = copy.deepcopy(mission, memo)
                mission.id = new_mission_id()  # unique: a store row, log and file of its own
            twin.submit(mission)
        return twin

    def panel(self, **options: Any) -> MissionPanel:
        from .widgets import MissionPanel

        return MissionPanel(self, **options)

    def close(self) -> None:
        """Release the backend's helpers (missions keep running, the store keeps them)."""
        self.backend.shutdown()

    def __repr__(self) -> str:
        return (
            f"MissionOrchestrator(max_concurrent={self.max_concurrent}, "
            f"backend={self.backend.name!r}, store={str(self.store.root)!r}, "
            f"pending={len(self.pending_queue)}, running={len(self.running)}, "
            f"completed={len(self.completed)})"
        )


def _note_store_errors(mission: Mission) -> None:
    """Put the unreadable events of a mission's history into its ``error``."""
    for event in mission.audit_log:
        if event.get("event") != "store_error":
            continue
        note = event.get("error_message") or "an event of this mission is corrupt"
        if not mission.error:
            mission.error = note
        elif note not in mission.error:
            mission.error = f"{mission.error}; {note}"


def _ended(mission: Mission) -> bool:
    """Finished for good: a mission that reconcile() only flagged ``stalled`` (its worker may
    still run, and must stay cancellable and killable) is not."""
    return mission.is_finished and not (mission.status == "stalled" and mission.finished_at is None)
