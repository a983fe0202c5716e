"""What the panel shows, read from an orchestrator's public API: the one state the browser
draws (header, filters, pinned rows, a page of rows, the queued line), built from the
view-models of :mod:`mission_widgets.core.panel_view`.

Costs: one pass over every mission's status (no mission is loaded for it), then views only
for the rows that are shown (pinned, one page, the open queued list). The header's clock is
one per orchestrator (:func:`shared_wave`), so two panels on it show the same numbers.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from ..core.mission import MISSION_STATUSES
from ..core.panel_view import (
    ATTENTION_STATUSES,
    HeaderView,
    Wave,
    advance_wave,
    blocked_text,
    header_view,
    row_state,
)
from ..core.progress import FINISHED_STATUSES, SEVERITY, MissionView, mission_view, page_count

#: Row orders the panel offers: (key, label).
SORT_ORDERS = (("newest", "newest first"), ("oldest", "oldest first"), ("status", "worst first"))
#: Most rows pinned above the list (the rest are one filter click away; the message stays
#: bounded however many missions fail).
PINNED_MAX = 50

_waves: weakref.WeakKeyDictionary[Any, Wave | None] = weakref.WeakKeyDictionary()
_waves_lock = threading.Lock()


class Selection(NamedTuple):
    """Which missions a panel shows, by id, in the order it shows them."""

    pinned: list[str]
    listed: list[str]
    queued: list[str]


def shared_wave(orchestrator: Any, header_of: Any) -> HeaderView:
    """The header of ``orchestrator``'s missions; ``header_of(wave)`` computes it for a wave.
    The wave (the clock) is kept per orchestrator, so every panel on it agrees."""
    with _waves_lock:
        wave = _waves.get(orchestrator)
        header: HeaderView = header_of(wave)
        new = advance_wave(
            wave,
            header.ended,
            header.total,
            _first_start(orchestrator),
            time.time(),
            _last_end(orchestrator) if header.ended == header.total else None,
        )
        if new != wave:
            _waves[orchestrator] = new
            header = header_of(new)
        return header


def _first_start(orchestrator: Any) -> float | None:
    """The earliest start of what runs (a mission launched but not started yet: now)."""
    now = time.time()
    starts = [m.started_at or now for m in list(orchestrator.running)]
    return min(starts) if starts else None


def _last_end(orchestrator: Any) -> float | None:
    """When the mission that finished last ended (the end of a wave's clock)."""
    completed = orchestrator.completed
    if not len(completed):
        return None
    end: float | None = getattr(completed[-1], "finished_at", None)
    return end


def _rank(status: str) -> int:
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)


def order(ids: list[str], statuses: dict[str, str], sort: str) -> list[str]:
    """``ids`` (in submission order) in the panel's ``sort`` order."""
    if sort == "oldest":
        return list(ids)
    newest = ids[::-1]
    if sort == "status":
        newest.sort(key=lambda i: _rank(statuses[i]))  # stable: newest first within a status
    return newest


def select(
    statuses: dict[str, str],
    flagged: Iterable[str],
    filter_status: str,
    sort: str,
    launched: Iterable[str] = (),
) -> Selection:
    """Pinned (need attention: waiting, stalled, failed, or ``flagged`` as hung or asking),
    listed (the rest, to page through) and queued (collapsed into one line) ids; a
    ``launched`` mission still says pending but is not queued any more."""
    ids = list(statuses)
    if filter_status != "all":
        chosen = [i for i in ids if statuses[i] == filter_status]
        return Selection([], order(chosen, statuses, sort), [])
    flagged_set = set(flagged)
    launched_set = set(launched)
    attention = set(ATTENTION_STATUSES)
    pinned, queued, listed = [], [], []
    for i, status in statuses.items():  # one pass: this is what a draw costs per mission
        if status in attention or i in flagged_set:
            pinned.append(i)
        elif status == "pending" and i not in launched_set:
            queued.append(i)
        else:
            listed.append(i)
    pinned = order(pinned, statuses, "status")
    return Selection(pinned, order(listed, statuses, sort), queued)


class PanelState:
    """Builds the panel's state from an orchestrator; keeps what the user chose (filter,
    sort, page, queued line open) and what it has open (details)."""

    def __init__(self, orchestrator: Any, page_size: int, sort: str) -> None:
        self.orchestrator = orchestrator
        self.page_size = page_size
        self.sort = sort
        self.filter = "all"
        self.page = 0
        self.queued_open = False
        self.views: dict[str, MissionView] = {}

    def _flagged(self) -> list[str]:
        """Running missions that ask a person or whose health flag is up."""
        return [
            m.id
            for m in list(self.orchestrator.running)
            if m.waiting_on or m.stall_reason or m.status in FINISHED_STATUSES
        ]

    def _header(self, counts: dict[str, int], now: float) -> HeaderView:
        running = list(self.orchestrator.running)
        waiting = sum(1 for m in running if m.waiting_on or m.status == "waiting")
        hung = sum(1 for m in running if m.stall_reason and not m.waiting_on)
        in_flight = sum(1 for m in running if m.status in FINISHED_STATUSES)
        healthy = len(running) - waiting - hung
        blocked = blocked_text(
            waiting,
            hung,
            healthy,
            len(self.orchestrator.pending_queue),
            self.orchestrator.max_concurrent,
        )

        def header_of(wave: Wave | None) -> HeaderView:
            return header_view(counts, wave, now, in_flight=in_flight, blocked=blocked)

        return shared_wave(self.orchestrator, header_of)

    def _rows(self, ids: list[str], now: float) -> list[dict[str, Any]]:
        orch = self.orchestrator
        views = []
        for mission_id in ids:
            try:
                views.append(mission_view(orch.get(mission_id), now))
            except KeyError:  # forgotten meanwhile (another process cleared it)
                continue
        unfinished = [v.mission_id for v in views if not v.finished]
        cancellable = orch.cancellable(unfinished) if unfinished else set()
        rows = []
        for view in views:
            self.views[view.mission_id] = view
            state = row_state(view, view.mission_id in cancellable)
            if state["health"]:  # a hung row: since when, for the browser's clock
                store_row = self.orchestrator.store.row(view.mission_id) or {}
                state["heartbeat_at"] = state["heartbeat_at"] or store_row.get("last_heartbeat")
                state["activity_at"] = store_row.get("last_activity")
            rows.append(state)
        return rows

    def build(self, now: float) -> dict[str, Any]:
        """The state the browser draws (everything but messages and details)."""
        orch = self.orchestrator
        statuses = orch.mission_statuses()
        # Counted from the same statuses the rows come from (one C-level pass, no store
        # query): the header, the chips and the rows agree at every draw.
        counts = dict.fromkeys(MISSION_STATUSES, 0)
        counts.update(Counter(statuses.values()))
        launched = [m.id for m in list(orch.running)]
        selection = select(statuses, self._flagged(), self.filter, self.sort, launched)
        size = self.page_size
        pages = page_count(len(selection.listed), size)
        self.page = min(max(self.page, 0), pages - 1)
        first = self.page * size
        self.views = {}
        queued_rows = self._rows(selection.queued[:size], now) if self.queued_open else []
        total = sum(counts.values())
        return {
            "now": now,
            "header": self._header(counts, now).as_state(),
            "filters": [
                {"status": status, "n": total if status == "all" else n}
                for status, n in [("all", total), *counts.items()]
                if status == "all" or n or status == self.filter
            ],
            "filter": self.filter,
            "sort": self.sort,
            "pinned": self._rows(selection.pinned[:PINNED_MAX], now),
            "pinned_more": max(len(selection.pinned) - PINNED_MAX, 0),
            "rows": self._rows(selection.listed[first : first + size], now),
            "page": self.page,
            "pages": pages,
            "listed": len(selection.listed),
            "queued": {
                "n": len(selection.queued),
                "open": self.queued_open,
                "rows": queued_rows,
                "more": max(len(selection.queued) - len(queued_rows), 0) if self.queued_open else 0,
            },
            "max_concurrent": orch.max_concurrent,
            "can_submit": orch.global_model is not None,
            "pending": len(orch.pending_queue),
        }
