"""The orchestrator's in-kernel mirrors of the store: the store's event stream is the truth.

:class:`StoreMirror` (a base of MissionOrchestrator) attaches to a store (adopting what it
finds), and ``_refresh()`` reads the events written since the last read into the
``Mission`` mirrors, ends missions whose worker died without a final event, notices
missions that recover from a stall, and refills the concurrency window. The watcher calls
``_refresh()`` while anything is in flight; ``poll_async()`` and the blocking waits call it
too (serialised by the orchestrator's lock).
"""

from __future__ import annotations

import operator
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from itertools import compress
from typing import TYPE_CHECKING, Any

from ..core.errors import MissionError, describe_error
from ..core.events import make_event
from ..core.mission import MISSION_STATUSES, Mission
from ..core.replay import apply_event
from ..core.status import NO_HEARTBEAT, MissionStatus, health_reason
from ..runtime.payload import read_payload, refusal
from ..runtime.processes import owner_alive
from ..runtime.registry import backend_for_row
from ..runtime.store import MissionStore, StoreError
from ..runtime.worker import read_end_from_log
from .cancellation import is_queued
from .finished import FinishedMirrors
from .handles import AsyncHandle, PollResult
from .health import flag_unhealthy
from .mission_index import UNSETTLED, MissionIndex

if TYPE_CHECKING:
    from ..runtime.backend import Backend, Row
    from .otel_live import LiveSpans

#: Seconds a mission's executor must have been gone before it is failed for it: another
#: process that cancels it (the CLI) kills the worker first and writes "cancelled" next.
GONE_GRACE_SECS = 1.0


#: The end of a mission whose row another process removed before this kernel read its end.
VANISHED = "forgotten by another process before this orchestrator read its end"


class StoreMirror:
    """Keeps ``pending_queue``, ``running``, ``completed`` and the Mission objects current."""

    store: MissionStore
    backend: Backend
    heartbeat_secs: float
    pending_queue: list[Mission]
    running: list[Mission]
    completed: FinishedMirrors
    async_handles: dict[str, AsyncHandle]
    _lock: threading.RLock
    _owner: str
    _draining: bool
    _live_spans: LiveSpans | None  # MissionOrchestrator(tracer_provider=...): otel_live.py

    def _init_mirror(self) -> None:
        self._missions: dict[str, Mission] = {}
        self._backend_of: dict[str, str] = {}
        self._cursor = 0
        #: mission id -> seq of the last event replayed when the mission was adopted;
        #: _refresh skips those events (they are already in the mirror).
        self._replayed: dict[str, int] = {}
        #: mission id -> (when its health flag was raised, whether for a lost heartbeat).
        self._stall_flags: dict[str, tuple[float, bool]] = {}
        #: mission id -> the step it waits on for a person's decision.
        self._waiting_on: dict[str, str] = {}
        self._since_poll = PollResult()
        #: every mission id this orchestrator knows, in submission order, by status.
        self._order = MissionIndex()
        self._owners_seen: dict[str, tuple[float, bool]] = {}
        self.completed = FinishedMirrors(self._load_finished, self._order)
        #: missions whose cancel is stopping their worker: its death is the cancel, not a crash.
        self._cancelling: set[str] = set()
        #: mission id -> reason of a cancel that stopped its worker while the store refused
        #: the record (write lock held): its end, once the store takes it, is that cancel.
        self._cancel_owed: dict[str, str] = {}
        #: mission id -> when its executor was first seen gone (see GONE_GRACE_SECS).
        self._gone_since: dict[str, float] = {}
        #: running missions of this orchestrator that another process asked to cancel.
        self._cancel_requested: list[str] = []

    if TYPE_CHECKING:  # provided by MissionOrchestrator and MissionControl

        def _fill_window(self) -> list[Mission]: ...
        def _keeps_queue(self, owner: str | None) -> bool: ...
        def _take_queued(self, row: Row) -> Mission | None: ...
        def _honour_cancel_requests(self) -> list[str]: ...

    # -- attach -------------------------------------------------------------------------------

    def _attach(self) -> None:
        """Know every mission of the store: running ones and orphaned queues as mirrors,
        finished ones by id and status only (built on first read: see finished.py)."""
        self._cursor = self.store.max_seq()
        # One sorted scan of the columns that decide, as columns: for finished missions
        # (most of a large store) no Python work per row, only C-level dict and list
        # building; full rows only for what is adopted. A queue is left to its owner
        # when the owner is alive (decided once per owner; the store leaves its rows out).
        kept = [owner for owner in self.store.queued_owners() if self._keeps_queue(owner)]
        ids, statuses, finished = self.store.attach_columns(skip_queued_of=kept)
        if 0 not in finished:
            shown_statuses: Sequence[str] = statuses
            finished_ids, finished_statuses, unfinished = ids, statuses, []
        else:
            shown_statuses = [s if f else UNSETTLED for s, f in zip(statuses, finished)]
            finished_ids = list(compress(ids, finished))
            finished_statuses = list(compress(statuses, finished))
            unfinished = list(compress(ids, map(operator.not_, finished)))
        self._order.add_many(ids, shown_statuses)  # submission order, for every mission
        self.completed.add_unloaded_many(finished_ids, finished_statuses)
        for row in self.store.rows_by_id(unfinished).values():
            try:
                self._adopt_row(row)
            except Exception as exc:  # one broken mission must not hide the others
                warnings.warn(
                    f"mission {row['id']} in {self.store.root} cannot be loaded: "
                    f"{describe_error(exc)}",
                    RuntimeWarning,
                    stacklevel=3,
                )
        for mission_id in unfinished:  # adopted by another orchestrator meanwhile
            if mission_id not in self._missions and not self.completed.has(mission_id):
                self._order.discard(mission_id)

    def _take_since_poll(self) -> PollResult:
        """What changed since the last call (poll_async()'s answer), and start afresh."""
        result, self._since_poll = self._since_poll, PollResult()
        return result

    def _owner_alive(self, owner: str | None) -> bool:
        """owner_alive, remembered for a second (attaching to 10,000 queued missions of
        one live kernel asks about the same owner 10,000 times)."""
        now = time.monotonic()
        known = self._owners_seen.get(owner or "")
        if known is None or now - known[0] > 1.0:
            known = self._owners_seen[owner or ""] = (now, owner_alive(owner))
        return known[1]

    def _know(self, mission: Mission) -> None:
        self._missions[mission.id] = mission
        self._order.add(mission.id)

    def _adopt_row(self, row: Row) -> None:
        mission_id = row["id"]
        if mission_id in self._missions or self.completed.has(mission_id):
            return
        status = row["status"]
        # A pending row with a pid was handed to a backend (a worker starting, a Dask task
        # queued): it is running, not queued -- launching it again would run it twice.
        if is_queued(row):
            if self._keeps_queue(row["owner"]):
                return  # another live orchestrator's queue
            if not self.store.adopt(mission_id, self._owner, row["owner"]):
                return  # another orchestrator adopted this dead owner's mission first
            mission = self._take_queued(row)
            if mission is not None:
                self._know(mission)
                self.pending_queue.append(mission)
                self._backend_of[mission_id] = row["backend"] or self.backend.name
            elif (failed := self.store.row(mission_id)) and failed["status"] != "pending":
                self._adopt_row(failed)  # its file was unreadable: show it failed now
            return
        if row["finished_at"] is not None:
            self._order.add(mission_id)
            self.completed.add_unloaded(mission_id, status)
            return
        mission = self._mirror_from_store(row)
        self._backend_of[mission_id] = row["backend"] or "?"
        if mission.finished_at is not None:  # the row predates its last events
            self._apply_final_state(mission)
            self.completed.append(mission)
        else:
            self.running.append(mission)
            # Found running on attach: if its executor is gone, it has been for a while.
            self._gone_since[mission_id] = float("-inf")

    def _mirror_from_store(self, row: Row) -> Mission:
        """A Mission mirror of a started mission, replayed from its events."""
        mission = Mission(row["goal"], mission_id=row["id"], auto_plan=False)
        events = self.store.events_for(mission.id)
        for event in events:
            self._track(mission, event)
            apply_event(mission, event)
        self._replayed[mission.id] = max((e.get("seq") or 0 for e in events), default=0)
        _note_store_errors(mission)
        self._know(mission)
        return mission

    def _load_finished(self, mission_id: str) -> Mission:
        """Build the mirror of a finished mission known by id only (first read of it)."""
        row = self.store.row(mission_id)
        if row is None:
            raise KeyError(f"no mission {mission_id!r} in store {self.store.root}")
        with self._lock:
            mission = self._mirror_from_store(row)
            self._apply_final_state(mission)
        return mission

    def _load_pending(self, row: Row) -> Mission | None:
        path = self.store.mission_file(row["id"])
        try:
            mission = read_payload(path)["mission"]
        except MissionError as exc:  # kept, failed by name (an older release's, perhaps)
            self.store.finish_if_unfinished(row["id"], "failed", refusal(str(exc), row["made_by"]))
            return None
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

    # -- refresh ------------------------------------------------------------------------------

    def _refresh(self) -> PollResult:
        """Read new events, update mirrors, end missions whose worker died, notice stalls
        that recovered, refill the window. Returns what changed (also kept for poll_async)."""
        with self._lock:
            result = PollResult()
            # Liveness before events: a worker that wrote its last event and exited is fine.
            # One store read for every running mission's row, not one per mission.
            unended = [m for m in self.running if not _ended(m)]
            rows = self.store.rows_by_id(m.id for m in unended)
            gone = [m for m in unended if not self._alive(m, rows.get(m.id) or {})]
            result.n_events += self._read_events()
            vanished = [m for m in unended if m.id not in rows and not _ended(m)]
            for mission in vanished:
                self._end_vanished(mission)
            self._cancel_requested += self._honour_cancel_requests()
            now = time.monotonic()
            for mission in unended:
                if mission not in gone or _ended(mission):
                    self._gone_since.pop(mission.id, None)
            for mission in gone:
                if _ended(mission) or mission.id in self._cancelling:
                    continue
                if now - self._gone_since.setdefault(mission.id, now) < GONE_GRACE_SECS:
                    continue  # its end may still be on its way (a cancel from elsewhere)
                self._gone_since.pop(mission.id, None)
                if self.store.finish_if_unfinished(*self._end_of_gone(mission, rows)) is None:
                    self._settle_from_row(mission)  # its final event was unreadable
            if gone:
                result.n_events += self._read_events()
            self._recover_stalls(rows)
            for mission in list(self.running):
                if _ended(mission) and not self._final_event_pending(mission):
                    self.running.remove(mission)
                    self.completed.append(mission)
                    result.completed.append(mission)
                    self._stall_flags.pop(mission.id, None)
                    self._waiting_on.pop(mission.id, None)
                    self._cancel_owed.pop(mission.id, None)
                    self.backend.release(mission.id)
                    handle = self.async_handles.get(mission.id)
                    if handle is not None:
                        handle.settle()
            for mission in vanished:  # ended (wait() returns, the handle settled), and then
                if mission in result.completed:  # forgotten here too, as where it was
                    self._drop_mirror(mission.id)
            if self._draining:
                result.started = self._fill_window()
            result.still_running = len(self.running)
            self._since_poll.merge(result)
            return result

    def _drop_mirror(self, mission_id: str) -> None:
        """Forget an ended mission here (forget(), or its row vanished): counts(), status(),
        ``completed`` and the panel then agree that it is gone."""
        self._missions.pop(mission_id, None)
        self._order.discard(mission_id)
        self.completed.discard(mission_id)
        self.async_handles.pop(mission_id, None)
        self._replayed.pop(mission_id, None)
        self._backend_of.pop(mission_id, None)

    def _end_vanished(self, mission: Mission) -> None:
        """Its row and events were removed (forget, prune, clear_finished by any process)
        before this kernel read its end: a vanished row is an ended mission. End the mirror
        as the worker's log says, else as forgotten; the refresh then frees its slot."""
        logged = read_end_from_log(self.store, mission.id)
        if logged is not None and logged.get("status") in MISSION_STATUSES:
            mission.status, mission.error = MissionStatus(logged["status"]), logged.get("error")
        else:
            mission.status = MissionStatus.FAILED
            mission.error = VANISHED
        mission.waiting_on = None
        mission.finished_at = time.time()

    def _end_of_gone(
        self, mission: Mission, rows: Mapping[str, Row]
    ) -> tuple[str, MissionStatus, str | None]:
        """How a mission whose executor is gone without a final event in the store ended:
        as its worker's log says when the store could not take the end (full or read-only),
        as the cancel that stopped it when the store could not take that, else failed with
        the backend's reason and the log's last line."""
        if mission.id in self._cancel_owed:
            return mission.id, MissionStatus.CANCELLED, self._cancel_owed[mission.id]
        logged = read_end_from_log(self.store, mission.id)
        if logged is not None and logged.get("status") in MISSION_STATUSES:
            return mission.id, MissionStatus(logged["status"]), logged.get("error")
        row = rows.get(mission.id) or {"id": mission.id}
        reason = backend_for_row(row, self.store, self.backend).exit_reason(row)
        tail = self._log_tail(mission.id)
        if tail:
            reason += f"; last log line: {tail}"
        return mission.id, MissionStatus.FAILED, reason

    def _read_events(self) -> int:
        count = 0
        while True:
            events = self.store.events_since(self._cursor)
            for seq, event in events:
                self._cursor = seq
                self._apply(event)
            if self._live_spans is not None and events:
                self._live_spans.feed(event for _, event in events)
            count += len(events)
            if len(events) < 5000:
                return count

    def _log_tail(self, mission_id: str) -> str:
        path = self.store.log_file(mission_id)
        try:
            with open(path, "rb") as handle:
                handle.seek(0, 2)
                handle.seek(max(0, handle.tell() - 4096))
                lines = handle.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return ""
        return lines[-1].strip() if lines else ""

    def _settle_from_row(self, mission: Mission) -> None:
        """End a mirror whose end is in the store row but not in its (corrupt) events."""
        row = self.store.row(mission.id)
        if row is None or row["finished_at"] is None:
            return
        mission.status = MissionStatus(row["status"] or "failed")
        mission.finished_at = row["finished_at"]
        mission.error = row["error"]
        self._apply_final_state(mission)

    def _final_event_pending(self, mission: Mission) -> bool:
        """An in-kernel mission sets its end status a moment before its thread writes the
        final event to the store: it is not finished for the store's readers until then."""
        return (
            self.backend.runs_in_kernel
            and mission.id in self.async_handles
            and self.backend.is_alive({"id": mission.id, "backend": self.backend.name}) is True
            and _unfinished(self.store.row(mission.id))
        )

    def _alive(self, mission: Mission, row: Row) -> bool:
        if row.get("pid") is None:
            # Launched but not yet recorded, or queued by a dead kernel: judge by the owner.
            return mission.id in self.async_handles or owner_alive(row.get("owner"))
        # None: this process cannot tell (a Dask mission seen locally); heartbeats tell.
        return backend_for_row(row, self.store, self.backend).is_alive(row) is not False

    # -- health flags -------------------------------------------------------------------------

    def _flag_unhealthy(self, mission: Mission, reason: str, detail: str) -> None:
        """Raise a health flag on a running mission (its status stays): a ``mission_stall``
        event in the store, read back into the mirror on the next refresh."""
        try:
            flag_unhealthy(self.store, mission.id, reason, detail)
        except StoreError:  # a stopped worker holds the store: flag the mirror only
            mission.stall_reason = reason
            self._stall_flags[mission.id] = (time.time(), reason == NO_HEARTBEAT)

    def _recover_stalls(self, rows: Mapping[str, Row]) -> None:
        """A flagged mission whose heartbeat (for a heartbeat flag) or events resumed after
        the flag loses it; the store records it (``mission_recovered``)."""
        for mission_id, (flagged_at, by_heartbeat) in list(self._stall_flags.items()):
            mission = self._missions.get(mission_id)
            row = rows.get(mission_id)
            if mission is None or row is None or mission.stall_reason is None:
                self._stall_flags.pop(mission_id, None)
                continue
            beat = row.get("last_heartbeat") or 0.0
            activity = row.get("last_activity") or 0.0
            if activity > flagged_at:
                why = "its worker reported progress again"
            elif by_heartbeat and beat > flagged_at:
                why = f"its heartbeat resumed ({time.time() - beat:.1f} s ago)"
            else:
                continue
            event = make_event("mission_recovered", mission_id, reason=why, source="reconcile")
            self._record_recovery(event)

    def _record_recovery(self, event: dict[str, Any]) -> None:
        mission_id = event["mission_id"]
        if not _unfinished(self.store.row(mission_id)):
            return
        try:
            self.store.append_event(event, {"stall_reason": None})
        except StoreError:  # the store is held: clear the mirror; the row follows later
            mission = self._missions.get(mission_id)
            if mission is not None:
                mission.stall_reason = None
            return
        self._stall_flags.pop(mission_id, None)

    def _track(self, mission: Mission, event: dict[str, Any]) -> None:
        """Book-keeping that events imply beyond the mission's own state: stall flags and
        waiting for a person."""
        name = event.get("event")
        mission_id = mission.id
        reason = health_reason(event) if name == "mission_stall" else None
        if reason is not None:
            self._stall_flags[mission_id] = (
                float(event.get("timestamp") or time.time()),
                reason == NO_HEARTBEAT,
            )
        elif name == "mission_recovered":
            self._stall_flags.pop(mission_id, None)
            mission.stall_reason = None
        elif name == "mission_waiting":
            self._waiting_on[mission_id] = event.get("waiting_on") or event.get("step_id") or ""
        elif name in ("mission_resumed", "mission_done") or str(name).startswith("escalation_"):
            self._waiting_on.pop(mission_id, None)
        if name == "mission_done":
            self._stall_flags.pop(mission_id, None)

    def _apply(self, event: dict[str, Any]) -> None:
        mission_id = event.get("mission_id")
        mission = self._missions.get(mission_id) if isinstance(mission_id, str) else None
        if mission is None:
            if not isinstance(mission_id, str) or self.completed.has(mission_id):
                return  # its mirror is built from all its events when first read
            row = self.store.row(mission_id)
            if row is not None:
                self._adopt_row(row)  # submitted by another orchestrator on this store
            return
        if (event.get("seq") or 0) <= self._replayed.get(mission.id, 0):
            return  # already replayed when the mission was adopted
        name = event.get("event")
        if name == "store_error":
            # The event is lost, not the mission: its worker goes on and the store row and
            # final state stay authoritative. Say so on the mirror instead of failing it.
            mission.audit_log.append(event)
            _note_store_errors(mission)
            return
        # Run by this orchestrator's own in-kernel backend: the object itself is running here.
        live = self.backend.runs_in_kernel and self._backend_of.get(mission.id) == self.backend.name
        if live and mission in self.running and name not in ("mission_stall", "mission_recovered"):
            if name == "mission_done" and not mission.is_finished:
                apply_event(mission, event, record=False)  # ended by the kernel (cancel)
            self._track(mission, event)
            return  # the object itself is running here and already has the event
        apply_event(mission, event, record=not live)
        self._track(mission, event)
        if not live and name == "mission_done":
            self._apply_final_state(mission)


def waiting_step(events: list[dict[str, Any]]) -> str | None:
    """The step a mission waits on for a person, from its events (the last word wins)."""
    for event in reversed(events):
        name = event.get("event")
        if name == "mission_waiting":
            return event.get("waiting_on") or event.get("step_id")
        if name in ("mission_resumed", "mission_done") or str(name).startswith("escalation_"):
            return None
    return None


def _unfinished(row: Row | None) -> bool:
    return row is not None and row["finished_at"] is None


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
    """Finished for good (a flagged mission is still running, cancellable and killable)."""
    return mission.is_finished
