"""What the panel shows, read from an orchestrator's public API: the one state the browser
draws (header, filters, pinned rows, a page of rows, the queued line), built from the
view-models of :mod:`mission_widgets.core.panel_view`.

Costs: the orchestrator's :class:`~mission_widgets.orchestrator.mission_index.MissionIndex`
keeps ids grouped by status as they change, so a draw reads counts and the ids it shows
(pinned, one page, the open queued list) without a pass over every mission, then views
only for those rows. The header's clock is
one per orchestrator (:func:`shared_wave`), so two panels on it show the same numbers.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

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

if TYPE_CHECKING:
    from ..orchestrator.mission_index import MissionIndex

#: Row orders the panel offers: (key, label).
SORT_ORDERS = (("newest", "newest first"), ("oldest", "oldest first"), ("status", "worst first"))
#: Most rows pinned above the list (the rest are one filter click away; the message stays
#: bounded however many missions fail).
PINNED_MAX = 50

_waves: weakref.WeakKeyDictionary[Any, Wave | None] = weakref.WeakKeyDictionary()
_waves_lock = threading.Lock()


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
    """When the mission that finished last ended (the end of a wave's clock); read from its
    store row when its mirror is not built (a draw builds no mirror)."""
    completed = orchestrator.completed
    last = completed.last_id()
    if last is None:
        return None
    mission = completed.loaded(last)
    source = mission if mission is not None else orchestrator.store.row(last) or {}
    end = source.get("finished_at") if isinstance(source, dict) else source.finished_at
    return None if end is None else float(end)


def _rank(status: str) -> int:
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)


class Selection(NamedTuple):
    """What a panel shows, by id, in the order it shows them: the first pinned rows, one
    page of the listed ones and the first queued ones, each with how many there are."""

    pinned: list[str]
    n_pinned: int
    listed: list[str]
    n_listed: int
    page: int
    queued: list[str]
    n_queued: int


def select(
    index: MissionIndex,
    running: dict[str, str],
    flagged: Collection[str],
    filter_status: str,
    sort: str,
    page: int,
    page_size: int,
) -> Selection:
    """Pinned (need attention: waiting, stalled, failed, or ``flagged`` as hung or asking;
    worst first), listed (the rest, one page of them, ``page`` brought into range) and
    queued (pending and not launched: ``running`` maps the missions launched to their
    status) ids, read from the index's groups: the cost is that of the rows shown.
    """
    counts = index.counts()
    newest = sort != "oldest"
    if filter_status != "all":
        n, _ = index.page([filter_status], 0, 0)
        page = _in_range(page, n, page_size)
        first = page * page_size
        _, ids = index.page([filter_status], first, first + page_size, newest=newest)
        return Selection([], 0, ids, n, page, [], 0)
    flagged = set(flagged)
    attention = set(ATTENTION_STATUSES)
    # Pinned, worst first, newest first within a status: whole attention groups, and the
    # flagged missions of other statuses.
    flagged_by_status: dict[str, list[str]] = {}
    for mission_id in flagged:
        status = index.status_of(mission_id)
        if status is not None and status not in attention:
            flagged_by_status.setdefault(status, []).append(mission_id)
    pinned: list[str] = []
    for status in sorted(attention | set(flagged_by_status), key=_rank):
        if len(pinned) >= PINNED_MAX:
            break
        if status in attention:
            pinned += index.page([status], 0, PINNED_MAX - len(pinned))[1]
        else:
            pinned += _newest_first(index, flagged_by_status[status])[: PINNED_MAX - len(pinned)]
    n_pinned = sum(counts.get(s, 0) for s in attention) + sum(map(len, flagged_by_status.values()))
    # Queued: pending and not launched. Listed: the rest, launched-but-pending included.
    launched = [i for i, status in running.items() if status == "pending" and i not in flagged]
    n_queued, queued = index.page(["pending"], 0, page_size, newest=False, exclude=running)
    others = [s for s in counts if s not in attention and s != "pending"]
    n_listed = index.page(others, 0, 0, exclude=flagged, include=launched)[0]
    page = _in_range(page, n_listed, page_size)
    first, stop = page * page_size, (page + 1) * page_size
    if sort != "status":
        _, listed = index.page(
            others, first, stop, newest=newest, exclude=flagged, include=launched
        )
        return Selection(pinned, n_pinned, listed, n_listed, page, queued, n_queued)
    listed, offset = [], 0  # worst first: one status after the other, newest first in each
    for status in sorted([*others, "pending"], key=_rank):
        if status == "pending":
            ids = _newest_first(index, launched)
            n, part = len(ids), ids[max(first - offset, 0) : max(stop - offset, 0)]
        else:
            n, part = index.page([status], first - offset, stop - offset, exclude=flagged)
        listed += part
        offset += n
        if offset >= stop:
            break
    return Selection(pinned, n_pinned, listed, n_listed, page, queued, n_queued)


def _newest_first(index: MissionIndex, ids: Iterable[str]) -> list[str]:
    return sorted(ids, key=index.position, reverse=True)


def _in_range(page: int, n_items: int, page_size: int) -> int:
    return min(max(page, 0), page_count(n_items, page_size) - 1)


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
        # A finished mission whose mirror is not built is drawn from its store row (one
        # query for all of them): a mirror (its events and final state) is built when its
        # details open, not for a row of the first draw.
        completed = orch.completed
        unloaded = [i for i in ids if completed.has(i) and completed.loaded(i) is None]
        stored = orch.store.rows_by_id(unloaded) if unloaded else {}
        views = []
        for mission_id in ids:
            try:
                views.append(mission_view(stored.get(mission_id) or orch.get(mission_id), now))
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
        index = orch.mission_index()  # running missions' own statuses brought in
        # Counted from the same index the rows come from (its groups' sizes, no store
        # query): the header, the chips and the rows agree at every draw.
        counts = dict.fromkeys(MISSION_STATUSES, 0)
        counts.update(index.counts())
        running = {m.id: str(m.status) for m in list(orch.running)}
        size = self.page_size
        selection = select(index, running, self._flagged(), self.filter, self.sort, self.page, size)
        self.page = selection.page
        pages = page_count(selection.n_listed, size)
        self.views = {}
        queued_rows = self._rows(selection.queued, now) if self.queued_open else []
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
            "pinned": self._rows(selection.pinned, now),
            "pinned_more": max(selection.n_pinned - PINNED_MAX, 0),
            "rows": self._rows(selection.listed, now),
            "page": self.page,
            "pages": pages,
            "listed": selection.n_listed,
            "queued": {
                "n": selection.n_queued,
                "open": self.queued_open,
                "rows": queued_rows,
                "more": max(selection.n_queued - len(queued_rows), 0) if self.queued_open else 0,
            },
            "max_concurrent": orch.max_concurrent,
            "can_submit": orch.global_model is not None,
            "pending": len(orch.pending_queue),
        }
