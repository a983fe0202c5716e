"""Finished missions, built lazily: attaching to a store of 100,000 missions must not load
every finished mission's events and state.

:class:`FinishedMirrors` is the orchestrator's ``completed``: a sequence whose ids (and
final statuses) are known at once, and whose ``Mission`` mirrors are built from the store
the first time each is read. :class:`MissionsView` is ``orch.missions``: every mission the
orchestrator knows, by id, in submission order, loading on access.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, overload

from ..core.mission import Mission

if TYPE_CHECKING:
    from .mission_index import MissionIndex


class FinishedMirrors(Sequence[Mission]):
    """Finished missions in the order they finished (or were found); loaded on first read.
    Every change of a final status is told to ``index`` (the orchestrator's MissionIndex),
    so the panel's groups by status follow without a pass over the missions."""

    def __init__(self, load: Callable[[str], Mission], index: MissionIndex) -> None:
        self._load = load
        self._index = index
        #: id -> its mirror, or its final status while not loaded yet.
        self._items: dict[str, Mission | str] = {}

    # -- what the orchestrator does -------------------------------------------------------------

    def add_unloaded(self, mission_id: str, status: str) -> None:
        """A finished mission known by id and status only (attach)."""
        if mission_id not in self._items:
            self._items[mission_id] = status
            self._index.settle(mission_id, str(status))

    def add_unloaded_many(self, ids: Sequence[str], statuses: Sequence[str]) -> None:
        """Many ids and their statuses at once, as :meth:`add_unloaded` (attaching to
        100,000: C-level dict building; the index was given them, in submission order,
        by the caller)."""
        if not self._items:
            self._items = dict(zip(ids, statuses))
        else:
            for mission_id, status in zip(ids, statuses):
                self.add_unloaded(mission_id, status)

    def append(self, mission: Mission) -> None:
        self._items.pop(mission.id, None)  # a mission that ends again goes last
        self._items[mission.id] = mission
        self._index.settle(mission.id, str(mission.status))

    def remove(self, mission: Mission) -> None:
        if self._items.get(mission.id) is not mission:
            raise ValueError(f"mission {mission.id} is not in completed")
        self.discard(mission.id)

    def discard(self, mission_id: str) -> None:
        """Not finished any more (submitted again) or forgotten (the caller drops it from
        the index)."""
        if self._items.pop(mission_id, None) is not None:
            self._index.unsettle(mission_id)

    def has(self, mission_id: str) -> bool:
        return mission_id in self._items

    def mission(self, mission_id: str) -> Mission:
        """The mirror of finished mission ``mission_id`` (built now if it was not)."""
        item = self._items[mission_id]
        if isinstance(item, Mission):
            return item
        mission = self._load(mission_id)
        self._items[mission_id] = mission
        self._index.settle(mission_id, str(mission.status))
        return mission

    def status_of(self, mission_id: str) -> str | None:
        """The status of finished mission ``mission_id`` without loading it (None if unknown)."""
        item = self._items.get(mission_id)
        return None if item is None else str(item.status if isinstance(item, Mission) else item)

    def last_id(self) -> str | None:
        """The id of the mission that finished last (None when none has), without loading."""
        return next(reversed(self._items), None)

    def loaded(self, mission_id: str) -> Mission | None:
        item = self._items.get(mission_id)
        return item if isinstance(item, Mission) else None

    def unloaded_statuses(self) -> Iterator[str]:
        """Statuses of the missions not loaded yet (counts without loading them)."""
        return (item for item in self._items.values() if isinstance(item, str))

    # -- the sequence ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Mission: ...
    @overload
    def __getitem__(self, index: slice) -> list[Mission]: ...
    def __getitem__(self, index: int | slice) -> Mission | list[Mission]:
        if index == -1 and self._items:  # the last one to finish, without listing every id
            return self.mission(next(reversed(self._items)))
        ids = list(self._items)
        if isinstance(index, slice):
            return [self.mission(i) for i in ids[index]]
        return self.mission(ids[index])

    def __iter__(self) -> Iterator[Mission]:
        for mission_id in list(self._items):
            if mission_id in self._items:
                yield self.mission(mission_id)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, Mission) or value.id not in self._items:
            return False
        return self.mission(value.id) is value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FinishedMirrors | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} finished missions>"


class MissionsView(Mapping[str, Mission]):
    """Every mission an orchestrator knows, by id, in submission order (loads on access)."""

    def __init__(self, order: Collection[str], get: Callable[[str], Mission]) -> None:
        self._order = order
        self._get = get

    def __getitem__(self, mission_id: str) -> Mission:
        if mission_id not in self._order:
            raise KeyError(mission_id)
        return self._get(mission_id)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, mission_id: object) -> bool:
        return mission_id in self._order
