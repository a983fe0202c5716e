"""Every mission an orchestrator knows, in submission order, grouped by status as statuses
change: what a panel over 100,000 missions counts, pins and pages from without a pass
over every mission.

:class:`MissionIndex` is the orchestrator's ``_order``. Each id gets a submission position
(growing, never reused) and sits in its status's group, a sorted list of positions. A
status change moves one position between two groups (a binary search and a C-level list
move), so counts are the groups' lengths and a page of any set of statuses, in submission
order or newest first, is found by binary search over the groups, in proportion to the
page, never to the missions. The status kept is the one shown: the final status of a
finished mission (set by :class:`~.finished.FinishedMirrors`), else ``pending`` until the
orchestrator brings a running mission's own status in (:meth:`set_live`).
"""

from __future__ import annotations

import heapq
import threading
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from itertools import compress
from typing import cast

#: The status of a mission known but neither finished nor running here.
UNSETTLED = "pending"


class MissionIndex:
    """Mission ids in submission order, grouped by status. Safe to read from the panel's
    thread while the watcher changes it (one small lock, never held across I/O)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: id -> submission position; insertion order is submission order.
        self._position: dict[str, int] = {}
        #: position -> id (None once the id was dropped: positions are never reused).
        self._ids: list[str | None] = []
        self._status: dict[str, str] = {}
        #: status -> sorted positions of the ids that have it.
        self._groups: dict[str, list[int]] = {}

    # -- what the orchestrator does -------------------------------------------------------

    def add(self, mission_id: str) -> None:
        """Know ``mission_id`` (last in submission order, ``pending``) unless it is known."""
        with self._lock:
            if mission_id not in self._position:
                self._append(mission_id, UNSETTLED)

    def add_many(self, ids: list[str], statuses: Sequence[str]) -> None:
        """Know many ids at once, in this order, with these statuses (attach: into an empty
        index it is C-level dict and list building; the index keeps
        ``ids``, the caller's list)."""
        with self._lock:
            if self._position:
                for mission_id, status in zip(ids, statuses, strict=True):
                    if mission_id in self._position:
                        self._move(mission_id, status)
                    else:
                        self._append(mission_id, status)
                return
            if len(ids) != len(statuses):
                raise ValueError(f"{len(ids)} ids but {len(statuses)} statuses")
            position = dict(zip(ids, range(len(ids))))
            if len(position) != len(ids):
                raise ValueError("an id appears twice")
            self._ids = cast("list[str | None]", ids)  # kept, not copied: 100,000 ids
            self._position = position
            self._status = dict(zip(ids, statuses))
            # One C-level pass per status (a handful), not a Python loop per mission.
            everyone = range(len(ids))
            distinct = set(statuses)
            if len(distinct) == 1:
                self._groups = {distinct.pop(): list(everyone)}
            else:
                self._groups = {
                    status: list(compress(everyone, map(status.__eq__, statuses)))
                    for status in distinct
                }

    def settle(self, mission_id: str, status: str) -> None:
        """``mission_id`` finished with ``status`` (an unknown id is added last)."""
        with self._lock:
            if mission_id in self._position:
                self._move(mission_id, str(status))
            else:
                self._append(mission_id, str(status))

    def set_live(self, mission_id: str, status: str, finished: Callable[[str], bool]) -> None:
        """The status of a known mission that runs, unless ``finished(mission_id)`` says it
        finished meanwhile (the watcher settled it after the caller read the status):
        asked under the lock that :meth:`settle` takes, so a late status never wins."""
        with self._lock:
            if mission_id in self._position and not finished(mission_id):
                self._move(mission_id, str(status))

    def unsettle(self, mission_id: str) -> None:
        """A known mission is not finished any more (submitted again): ``pending``."""
        with self._lock:
            if mission_id in self._position:
                self._move(mission_id, UNSETTLED)

    def discard(self, mission_id: str) -> None:
        self.discard_many((mission_id,))

    def discard_many(self, ids: Iterable[str]) -> None:
        """Forget these ids (one pass per touched group, however many: clear_finished)."""
        with self._lock:
            dropped: dict[str, set[int]] = {}
            for mission_id in ids:
                position = self._position.pop(mission_id, None)
                if position is None:
                    continue
                self._ids[position] = None
                dropped.setdefault(self._status.pop(mission_id), set()).add(position)
            for status, positions in dropped.items():
                group = self._groups[status]
                if len(positions) == 1:
                    del group[bisect_left(group, next(iter(positions)))]
                else:
                    group[:] = [p for p in group if p not in positions]
                if not group:
                    del self._groups[status]

    def _append(self, mission_id: str, status: str) -> None:
        position = len(self._ids)
        self._ids.append(mission_id)
        self._position[mission_id] = position
        self._status[mission_id] = status
        self._groups.setdefault(status, []).append(position)  # the largest position: last

    def _move(self, mission_id: str, status: str) -> None:
        old = self._status[mission_id]
        if old == status:
            return
        position = self._position[mission_id]
        group = self._groups[old]
        del group[bisect_left(group, position)]
        if not group:
            del self._groups[old]
        self._status[mission_id] = status
        insort(self._groups.setdefault(status, []), position)

    # -- reads ----------------------------------------------------------------------------

    def __contains__(self, mission_id: object) -> bool:
        return mission_id in self._position

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._position))

    def __len__(self) -> int:
        return len(self._position)

    def position(self, mission_id: str, default: int = -1) -> int:
        """The submission position of ``mission_id`` (``default`` if unknown); larger is
        newer."""
        return self._position.get(mission_id, default)

    def status_of(self, mission_id: str) -> str | None:
        return self._status.get(mission_id)

    def statuses(self) -> dict[str, str]:
        """id -> status of every mission, in submission order (a copy)."""
        with self._lock:
            return dict(self._status)

    def counts(self) -> dict[str, int]:
        """Missions by status (only statuses some mission has)."""
        with self._lock:
            return {status: len(group) for status, group in self._groups.items()}

    def page(
        self,
        statuses: Collection[str],
        start: int,
        stop: int,
        *,
        newest: bool = True,
        exclude: Collection[str] = (),
        include: Collection[str] = (),
    ) -> tuple[int, list[str]]:
        """``(how many, ids[start:stop])`` of the missions whose status is in ``statuses``,
        without those of ``exclude`` and with those of ``include`` (both a few ids), newest
        first or in submission order. Costs binary searches plus the page."""
        with self._lock:
            lists = [self._groups[s] for s in statuses if s in self._groups]
            wanted = set(statuses)
            removed = sorted(
                p
                for i in set(exclude)
                if (p := self._position.get(i)) is not None and self._status[i] in wanted
            )
            added = sorted(
                p
                for i in set(include)
                if (p := self._position.get(i)) is not None and self._status[i] not in wanted
            )
            lists.append(added)
            total = sum(map(len, lists)) - len(removed)
            start, stop = max(start, 0), min(stop, total)
            if start >= stop:
                return total, []
            # In submission order, the page is the ranks [first, first + count).
            first = total - stop if newest else start
            count = stop - start
            low = _value_at_rank(lists, removed, first)
            wanted_n = count + len(removed)  # enough from each group, whichever are skipped
            candidates = [group[(i := bisect_left(group, low)) : i + wanted_n] for group in lists]
            skip = set(removed)
            positions = [p for p in heapq.merge(*candidates) if p not in skip][:count]
            if newest:
                positions.reverse()
            return total, [self._ids[p] or "" for p in positions]


def _value_at_rank(lists: list[list[int]], removed: list[int], rank: int) -> int:
    """The position at ``rank`` (0 = oldest) of the sorted union of ``lists`` less
    ``removed``: the smallest value with more than ``rank`` members at or below it."""

    def at_or_below(value: int) -> int:
        below = sum(bisect_right(group, value) for group in lists)
        return below - bisect_right(removed, value)

    low, high = 0, max((group[-1] for group in lists if group), default=0)
    while low < high:
        middle = (low + high) // 2
        if at_or_below(middle) > rank:
            high = middle
        else:
            low = middle + 1
    return low
