"""What a person does to missions that run: reconcile (flag stalls), cancel, decide and
explain for a mission that waits, and forget finished history.

:class:`MissionControl` is a base of MissionOrchestrator. Everything here works for any
mission of the store, also one that another process runs or queued: what this process
cannot do itself goes to the owner as a request in the store (cancel of another process's
queue, a decision or an explanation for a waiting worker).
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..core.checks import number_option
from ..core.mission import MISSION_STATUSES, Mission
from ..core.status import MissionStatus
from ..runtime.registry import backend_for_row
from ..runtime.store import MissionStore, StoreError
from ..runtime.store_lock import wal_lock_holder
from .cancellation import can_cancel, cancel_in_store
from .deciding import decide_in_store, explain_in_store, waiting_on_in_store
from .health import health_of

if TYPE_CHECKING:
    from ..runtime.backend import Backend, Row
    from .finished import FinishedMirrors
    from .handles import AsyncHandle
    from .mission_index import MissionIndex


#: How long cancel() retries recording a cancel while another process holds the store's
#: write lock, before it stops the worker anyway (see _record_then_stop).
CANCEL_RECORD_SECS = 10.0


class MissionControl:
    """reconcile, cancel, decide, explain, forget: the person's side of the orchestrator."""

    store: MissionStore
    backend: Backend
    heartbeat_timeout_secs: float
    no_progress_secs: float
    cancel_grace_secs: float
    pending_queue: list[Mission]
    running: list[Mission]
    completed: FinishedMirrors
    _order: MissionIndex
    async_handles: dict[str, AsyncHandle]
    _lock: threading.RLock
    _missions: dict[str, Mission]
    _cancelling: set[str]
    _cancel_owed: dict[str, str]
    _waiting_on: dict[str, str]
    _watch: Callable[[], None]
    _end_unstarted: Callable[[Mission, MissionStatus, str], None]
    _flag_unhealthy: Callable[[Mission, str, str], None]
    _wake: Callable[[], None]
    _drop_mirror: Callable[[str], None]

    # -- health -----------------------------------------------------------------------------

    def _check_health(
        self, heartbeat_timeout_secs: float, no_progress_secs: float
    ) -> list[tuple[Mission, Row, str, str]]:
        """Flag this orchestrator's running missions whose heartbeat or progress stopped (see
        health.py); return each unhealthy one with its row and flag. Status stays ``running``."""
        unhealthy: list[tuple[Mission, Row, str, str]] = []
        # A snapshot under the lock, the store work outside it: a refresh that waits on a
        # busy store must not hold the health check up.
        with self._lock:
            running, waiting = list(self.running), set(self._waiting_on)
        rows = self.store.rows_by_id(m.id for m in running)
        now = time.time()
        for mission in running:
            row = rows.get(mission.id)
            if row is None or row["finished_at"] is not None:
                continue
            found = health_of(
                row,
                now,
                heartbeat_timeout_secs=heartbeat_timeout_secs,
                no_progress_secs=no_progress_secs,
                waiting=mission.id in waiting or row["status"] == "waiting",
                has_heartbeat=backend_for_row(row, self.store, self.backend).has_heartbeat,
            )
            if found is None:
                continue
            reason, detail = found
            unhealthy.append((mission, row, reason, detail))
            if mission.stall_reason != reason:
                self._flag_unhealthy(mission, reason, detail)
        return unhealthy

    def _health_tick(self) -> None:
        """The health monitor's check, with this orchestrator's thresholds."""
        if self._check_health(self.heartbeat_timeout_secs, self.no_progress_secs):
            self._wake()  # the watcher reads the flag now and tells the panel

    def reconcile(
        self,
        stall_threshold_secs: float = 600,
        *,
        heartbeat_timeout_secs: float | None = None,
        no_progress_secs: float | None = None,
        kill: bool = False,
    ) -> list[str]:
        """Flag running missions that look stuck; return their ids (aisdk's reconcile).

        A flagged mission stays ``running`` with ``stall_reason`` "no_heartbeat" (its
        heartbeat is older than ``heartbeat_timeout_secs``, default: the orchestrator's) or
        "no_progress" (no event for ``no_progress_secs``, default ``stall_threshold_secs``; a
        mission waiting for a person is never flagged for that). The flag clears by itself
        when its heartbeat or progress resumes. With ``kill=True`` flagged missions are
        stopped and end ``failed`` (their error says why). The orchestrator runs the same
        check on its own every :data:`~.health.HEALTH_PERIOD_SECS` with its own thresholds.
        When a stopped worker holds the store, the flag stays on the mirror and its detail
        names the holder (the store's error); ``cancel()`` of that mission frees the store.
        """
        number_option("stall_threshold_secs", stall_threshold_secs)
        number_option("heartbeat_timeout_secs", heartbeat_timeout_secs, allow_none=True)
        number_option("no_progress_secs", no_progress_secs, allow_none=True)
        self._watch()
        hb_timeout = (
            self.heartbeat_timeout_secs
            if heartbeat_timeout_secs is None
            else heartbeat_timeout_secs
        )
        quiet = stall_threshold_secs if no_progress_secs is None else no_progress_secs
        unhealthy = self._check_health(hb_timeout, quiet)
        if kill:
            with self._lock:
                for mission, row, reason, detail in unhealthy:
                    # Record first, then act (as cancel does): the end is the kill's,
                    # whatever the worker's death looks like afterwards.
                    why = f"{reason} ({detail}): killed by reconcile()"
                    try:
                        self.store.finish_if_unfinished(mission.id, MissionStatus.FAILED, why)
                    except StoreError:  # held by this very worker: stop it, then record
                        self._terminate(mission.id, row)
                        self.store.finish_if_unfinished(mission.id, MissionStatus.FAILED, why)
                    else:
                        self._terminate(mission.id, row)
        self._watch()
        return [mission.id for mission, *_ in unhealthy]

    # -- cancel -----------------------------------------------------------------------------

    def cancel(self, mission_id: str, *, reason: str = "cancelled by user") -> bool:
        """Stop a queued or running mission of the store; False when it had already ended.
        ``reason`` becomes the mission's error (a program that cancels on a timeout of its
        own says so, instead of "cancelled by user").

        This orchestrator's own missions: a queued one ends at once; a running one gets
        SIGTERM to its process group, SIGKILL after ``cancel_grace_secs``. Another
        process's: see :func:`mission_widgets.orchestrator.cancellation.cancel_in_store` (a queued
        mission of a live owner is ended by that owner, on a request in the store).
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"cancel reason must be a non-empty string, got {reason!r}")
        before = "cancelled before it started"
        if reason != "cancelled by user":
            before = f"{reason} (before it started)"
        with self._lock:
            mission = self._missions.get(mission_id)
            queued = mission is not None and mission in self.pending_queue
            own = (
                mission is not None
                and mission in self.running
                and (mission_id in self.async_handles)
            )
            if mission is not None and queued:
                self.pending_queue.remove(mission)
                self._end_unstarted(mission, MissionStatus.CANCELLED, before)
            row = self.store.row(mission_id) if own else None
        done: dict[str, Any] | str | None = None
        if own and row is not None:
            # Outside the lock: the grace period must not freeze the watcher (and the panel).
            self._cancelling.add(mission_id)
            try:
                done = self._record_then_stop(mission_id, row, reason)
            finally:
                self._cancelling.discard(mission_id)
        elif not queued:
            done = cancel_in_store(
                self.store,
                mission_id,
                reason=reason,
                grace=self.cancel_grace_secs,
                current=self.backend,
            )
        self._watch()
        handle = self.async_handles.get(mission_id)
        if handle is not None:
            handle.settle()
        return queued or done is not None

    def _record_then_stop(
        self, mission_id: str, row: Row, reason: str
    ) -> dict[str, Any] | str | None:
        """Record the cancel, then stop the worker: a kernel killed (or interrupted) between
        the two leaves the mission ``cancelled``, and its worker, finding its row ended,
        stops itself. The record is retried for CANCEL_RECORD_SECS while the store's write
        lock is held; only then is the worker stopped first (it may be the holder, stopped
        inside a write), the record retried again, and if the store still refuses it, owed:
        the end recorded once the store takes one is this cancel, not the worker's death."""
        try:
            done = self._record_cancel(mission_id, reason, row)
        except StoreError:
            self._cancel_owed[mission_id] = reason
            self._terminate(mission_id, row)
            try:
                done = self._record_cancel(mission_id, reason, row)
            except StoreError:
                return "stopped"  # ended as cancelled by the refresh that sees it gone
            self._cancel_owed.pop(mission_id, None)
            return done
        if done is not None:
            self._terminate(mission_id, row)
        return done

    def _record_cancel(self, mission_id: str, reason: str, row: Row) -> dict[str, Any] | None:
        """finish_if_unfinished(cancelled), retried while another process holds the write
        lock, for at most CANCEL_RECORD_SECS (each try waits the store's busy timeout); the
        last StoreError is raised, at once when the holder is the mission's own worker
        (stopped inside a write, it never lets go)."""
        deadline = time.monotonic() + CANCEL_RECORD_SECS
        while True:
            try:
                return self.store.finish_if_unfinished(mission_id, MissionStatus.CANCELLED, reason)
            except StoreError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                holder = wal_lock_holder(str(self.store.db_path))
                if holder is not None and holder == row.get("pid"):
                    raise

    def can_cancel(self, mission_id: str) -> bool:
        """Whether :meth:`cancel` can still stop ``mission_id`` (asked of the backend that runs
        it, found from its row): False once it has ended or when nothing here can reach it."""
        return mission_id in self.cancellable([mission_id])

    def cancellable(self, mission_ids: Iterable[str]) -> set[str]:
        """The ids among ``mission_ids`` that :meth:`cancel` can still stop (one store read)."""
        ids = list(mission_ids)
        queued = {m.id for m in self.pending_queue}
        rows = self.store.rows_by_id(i for i in ids if i not in queued)
        return {
            i
            for i in ids
            if i in queued or (i in rows and can_cancel(rows[i], self.store, self.backend))
        }

    def _terminate(self, mission_id: str, row: Row) -> None:
        """Stop what executes a mission, by the backend that runs it (its store row says)."""
        row = {**row, "id": mission_id}
        backend_for_row(row, self.store, self.backend).stop(row, self.cancel_grace_secs)

    def cancel_all(self) -> list[str]:
        ids = [m.id for m in self.pending_queue + self.running]
        return [i for i in ids if self.cancel(i)]

    def _honour_cancel_requests(self) -> list[str]:
        """End this orchestrator's queued missions that another process asked to cancel;
        return the ids of its running ones that were asked (cancelled by the caller, outside
        the lock). Called with the lock held."""
        mine = [m.id for m in self.pending_queue]
        mine += [m.id for m in self.running if m.id in self.async_handles]
        to_stop = []
        for start in range(0, len(mine), 500):
            for request in self.store.take_requests(mine[start : start + 500], ("cancel",)):
                mission = self._missions.get(request["mission_id"])
                reason = (request["payload"] or {}).get("reason") or "cancelled"
                if mission is not None and mission in self.pending_queue:
                    self.pending_queue.remove(mission)
                    self._end_unstarted(
                        mission, MissionStatus.CANCELLED, f"{reason} (from another process)"
                    )
                else:
                    to_stop.append(request["mission_id"])
        return to_stop

    # -- decisions by a person ----------------------------------------------------------------

    def waiting_on(self, mission_id: str) -> str | None:
        """The step mission ``mission_id`` waits on for a person's decision, else None
        (read from the store: right in any process)."""
        return waiting_on_in_store(self.store, mission_id)

    def decide(self, mission_id: str, action: str) -> str:
        """Answer a mission that waits for a person: ``"retry"`` (one more attempt, with
        the failures and any explanation as context), ``"skip"`` (the step is done with
        "[SKIPPED: user decision]") or ``"abort"`` (the mission fails). Works from any
        process on the store (the answer is a request its worker takes). Returns the step."""
        return decide_in_store(self.store, mission_id, action)

    def explain(self, mission_id: str) -> str:
        """Ask the mission's model to analyse the failures of the step it waits on (root
        cause, alternatives, whether to go on: aisdk's prompt); record the text as an event,
        hand it to the waiting worker (a following retry gets "[AGENT ANALYSIS] ..." in its
        context) and return it."""
        return explain_in_store(self.store, mission_id, mission=self._missions.get(mission_id))

    # -- history ------------------------------------------------------------------------------

    def forget(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        older_than: float | datetime.timedelta | None = None,
        statuses: str | Iterable[str] | None = None,
    ) -> list[str]:
        """Remove finished missions from the store (rows, events, files) and from this
        orchestrator: those among ``ids``, finished more than ``older_than`` ago (seconds
        or a timedelta), of ``statuses``. Missions that have not ended are never removed.
        Returns the ids removed."""
        if isinstance(ids, str):
            ids = [ids]
        if isinstance(statuses, str):
            statuses = [statuses]
        if statuses is not None:
            statuses = list(statuses)
            unknown = [s for s in statuses if s not in MISSION_STATUSES]
            if unknown:
                raise ValueError(
                    f"unknown status {unknown[0]!r}; statuses are {', '.join(MISSION_STATUSES)}"
                )
        if isinstance(older_than, datetime.timedelta):
            older_than = older_than.total_seconds()
        if older_than is not None and (isinstance(older_than, bool) or older_than < 0):
            raise ValueError(f"older_than must be seconds >= 0 or a timedelta, got {older_than!r}")
        with self._lock:
            removed = self.store.prune(
                older_than_secs=older_than,
                statuses=statuses,
                ids=None if ids is None else list(ids),
            )
            running = {m.id for m in self.running}
            # Its end is not read yet: the next refresh ends a running one (vanished).
            gone = [mission_id for mission_id in removed if mission_id not in running]
            self._order.discard_many(gone)  # one pass, however many (clear_finished)
            for mission_id in gone:
                self._drop_mirror(mission_id)
        return removed

    def clear_finished(self) -> list[str]:
        """Forget every finished mission (the panel's "clear finished")."""
        return self.forget()
