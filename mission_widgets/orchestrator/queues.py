"""Queues of other orchestrators of this process on the same store: re-running a cell.

``orch = MissionOrchestrator(...)`` run again makes a new orchestrator while the earlier one
still holds the queue it was given. :class:`SharedQueues` (a base of MissionOrchestrator,
binding no state of its own) lets the new one take that queue over -- the very Mission
objects the notebook holds -- when the earlier one is closed, or is made the same way and
has started nothing; otherwise a notebook hears whose queue it is and ``adopt_queued()``
takes it over. Each queued row is adopted by one orchestrator (a compare-and-swap on its
owner in the store).
"""

from __future__ import annotations

import gc
import sys
import threading
import warnings
import weakref
from typing import TYPE_CHECKING

from ..core.models import model_label
from ..runtime.processes import owner_token

if TYPE_CHECKING:
    from ..core.mission import Mission
    from ..runtime.backend import Backend, Row
    from ..runtime.store import MissionStore
    from .finished import FinishedMirrors
    from .mission_index import MissionIndex

#: The orchestrators of this process that are open, by owner.
OPEN: weakref.WeakValueDictionary[str, SharedQueues] = weakref.WeakValueDictionary()


class SharedQueues:
    """Adopting, reporting and handing over queued missions between the orchestrators of
    one process."""

    store: MissionStore
    backend: Backend
    max_concurrent: int
    global_model: object
    pending_queue: list[Mission]
    completed: FinishedMirrors
    _owner: str
    _siblings: set[str]
    _draining: bool
    _lock: threading.RLock
    _missions: dict[str, Mission]
    _order: MissionIndex
    _backend_of: dict[str, str]

    if TYPE_CHECKING:

        @property
        def window_used(self) -> int: ...
        def _owner_alive(self, owner: str | None) -> bool: ...
        def _load_pending(self, row: Row) -> Mission | None: ...
        def _know(self, mission: Mission) -> None: ...
        def _changed(self) -> None: ...

    def _keeps_queue(self, owner: str | None) -> bool:
        """Whether the queued rows of ``owner`` are left to it: it is another live process,
        or an orchestrator of this process that is still open. The queue of a closed or
        collected one (the cell that made it was run again) is adopted like a dead kernel's."""
        if owner == self._owner:
            return True
        process = (owner or "").rpartition(":")[0]
        if process and process == owner_token():
            other = OPEN.get(owner or "")
            return other is not None and not self._replaces(other)
        return self._owner_alive(owner)

    def _replaces(self, other: SharedQueues) -> bool:
        """Whether this orchestrator takes over the queue of ``other``, an open orchestrator
        of this process: it is made the same way (an earlier run of the same cell: same
        store, backend, window and model), has started nothing and is not a clone."""
        return (
            other._owner not in self._siblings
            and not other._draining
            and other.window_used == 0
            and other.store.root == self.store.root
            and other.backend.name == self.backend.name
            and other.max_concurrent == self.max_concurrent
            and model_label(other.global_model) == model_label(self.global_model)
        )

    def _take_queued(self, row: Row) -> Mission | None:
        """The Mission of a queued row this orchestrator adopted: the very object when the
        orchestrator that queued it is open in this process, else loaded from its file."""
        other = OPEN.get(row["owner"] or "")
        mission = other._give_up_queued(row["id"]) if other is not None else None
        return mission if mission is not None else self._load_pending(row)

    def _queued_by_others_here(self) -> list[tuple[str, str]]:
        """``(mission id, owner)`` of the queued rows of other open orchestrators of this
        process on this store."""
        here = owner_token() + ":"
        rows = self.store.rows(
            columns=("id", "owner"), where="WHERE status='pending' AND finished_at IS NULL"
        )
        return [
            (row["id"], str(row["owner"]))
            for row in rows
            if (row["owner"] or "").startswith(here) and row["owner"] != self._owner
        ]

    def _report_queues_left(self) -> None:
        """In a notebook, say so when queued missions of this store wait for another open
        orchestrator of this process (they start only with it; ``adopt_queued()`` takes
        them over). Scripts and tests that run two orchestrators on purpose hear nothing."""
        shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
        if shell is None:
            return
        left = self._queued_by_others_here()
        if left:
            warnings.warn(
                f"{len(left)} queued mission(s) of store {self.store.root} belong to another "
                "open MissionOrchestrator of this process (an earlier run of this cell?): "
                "they start only with it. Run them there, or take them over here with "
                "orch.adopt_queued().",
                UserWarning,
                stacklevel=3,
            )

    def _adopt_left_here(self) -> None:
        """Adopt the queues that orchestrators of this process left when they were closed or
        dropped (``orch = MissionOrchestrator(...)`` run again: the earlier object is
        garbage once the name is bound to the new one)."""
        left = self._queued_by_others_here()
        if left and any(owner in OPEN for _, owner in left):
            gc.collect()  # an orchestrator that is only garbage holds its queue until then
        for mission_id, owner in left:
            if owner not in OPEN:
                self._adopt_queued_row(mission_id, owner)

    def adopt_queued(self) -> list[Mission]:
        """Take over the queued missions of the other orchestrators of this process on this
        store (the same Mission objects, when they are still open); returns them, now in
        this orchestrator's queue. Each is adopted by exactly one orchestrator."""
        adopted = []
        for mission_id, owner in self._queued_by_others_here():
            mission = self._adopt_queued_row(mission_id, owner)
            if mission is not None:
                adopted.append(mission)
        self._changed()
        return adopted

    def _adopt_queued_row(self, mission_id: str, owner: str) -> Mission | None:
        """Move a queued row of ``owner`` (of this process) to this orchestrator's queue."""
        with self._lock:
            if not self.store.adopt(mission_id, self._owner, owner):
                return None
            row = self.store.row(mission_id)
            mission = self._take_queued({**row, "owner": owner}) if row is not None else None
            if mission is None:
                return None
            self._know(mission)
            self._backend_of[mission_id] = self.backend.name
            self.completed.discard(mission_id)
            self.pending_queue.append(mission)
        return mission

    def _give_up_queued(self, mission_id: str) -> Mission | None:
        """Hand a queued mission to the orchestrator that adopted it (its row is no longer
        ours: our claim would fail); the Mission object, or None when it is not queued here."""
        with self._lock:
            mission = self._missions.get(mission_id)
            if mission is None or mission not in self.pending_queue:
                return None
            self.pending_queue.remove(mission)
            self._missions.pop(mission_id, None)
            self._order.discard(mission_id)
            self._backend_of.pop(mission_id, None)
        self._changed()
        return mission
