"""What the orchestrator hands back: an :class:`AsyncHandle` per started mission (a
``concurrent.futures.Future``, like ipyparallel's ``AsyncResult``) and the
:class:`PollResult` of ``poll_async()`` (attributes, and aisdk's named-list reading as a
mapping: ``result["completed"]``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import MissionError
from ..core.mission import Mission

if TYPE_CHECKING:
    from ..runtime.store import MissionStore


class HandleOwner(Protocol):
    """What a handle asks of the orchestrator that made it (MissionOrchestrator is one):
    named here so this module needs nothing above it."""

    store: MissionStore

    def wait(self, mission_id: str, timeout: float | None = None) -> Mission: ...

    def cancel(self, mission_id: str) -> bool: ...


class MissionFailed(MissionError):
    """``AsyncHandle.result()`` of a mission that ended failed or stalled (``.mission`` has it)."""

    def __init__(self, mission: Mission) -> None:
        text = f"mission {mission.id} ended {mission.status}: {mission.error or ''}"
        if mission.status == "stalled":  # its error says what ended it; add the cause
            causes = [s.last_error for s in mission.steps or [] if s.status == "failed"]
            if causes and causes[-1]:
                text += f" (last error: {causes[-1]})"
        super().__init__(text)
        self.mission = mission


@dataclass(eq=False)
class PollResult(Mapping[str, Any]):
    """What changed since the previous ``poll_async()``: missions that ``completed`` and
    ``started``, the number of events read, and how many missions are ``still_running``.

    Reads as aisdk's named list too: ``result["completed"]``, ``result["still_running"]``.
    """

    completed: list[Mission] = field(default_factory=list)
    still_running: int = 0
    started: list[Mission] = field(default_factory=list)
    n_events: int = 0

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(f"{key!r}; a poll result has {', '.join(self._keys())}")
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @property
    def changed(self) -> bool:
        """Whether anything happened (an event, a start or an end)."""
        return bool(self.completed or self.started or self.n_events)

    def merge(self, other: PollResult) -> None:
        """Add ``other`` (a later refresh) to this one."""
        self.completed.extend(m for m in other.completed if m not in self.completed)
        self.started.extend(m for m in other.started if m not in self.started)
        self.n_events += other.n_events
        self.still_running = other.still_running


class AsyncHandle(Future[Mission]):
    """A started mission, as a ``concurrent.futures.Future`` of what it produces.

    ``result(timeout)`` returns the mission's result value (:attr:`Mission.result`) once it
    succeeded, raises :class:`MissionFailed` when it failed or stalled, and
    ``CancelledError`` when it was cancelled; ``handle.mission`` is the Mission, and
    ``wait()`` returns it whatever its end. ``done()``, ``add_done_callback()``,
    ``exception()`` work as for any future; the watcher completes it, so nothing needs
    polling. ``cancel()`` stops the mission (its worker too) unless it has already ended.
    """

    def __init__(self, orchestrator: HandleOwner, mission: Mission, pid: int | None) -> None:
        super().__init__()
        self._orchestrator = orchestrator
        self.mission = mission
        self.mission_id = mission.id
        self.pid = pid
        self.checkpoint_path = str(orchestrator.store.checkpoint_file(mission.id))
        self.log_path = str(orchestrator.store.log_file(mission.id))

    @property
    def status(self) -> str:
        return self.mission.status

    def result(self, timeout: float | None = None) -> Any:
        """The mission's result value once it succeeded (see the class)."""
        mission = super().result(timeout)
        return mission.result

    def wait(self, timeout: float | None = None) -> Mission:
        """Block until the mission ends; return it (whatever its end). TimeoutError after
        ``timeout`` seconds."""
        return self._orchestrator.wait(self.mission_id, timeout=timeout)

    def cancel(self) -> bool:
        """Stop the mission; False when it had already ended."""
        if self.done():
            return False
        stopped = self._orchestrator.cancel(self.mission_id)
        self.settle()
        return stopped

    def settle(self) -> None:
        """Complete the future from the mission's end (called when the mirror saw it)."""
        if self.done() or not self.mission.is_finished:
            return
        try:  # the watcher and a caller may settle at the same moment: first one wins
            if self.mission.status == "cancelled":
                super().cancel()
                self.set_running_or_notify_cancel()
            elif self.mission.status == "succeeded":
                self.set_result(self.mission)
            else:
                self.set_exception(MissionFailed(self.mission))
        except InvalidStateError:
            pass

    def __repr__(self) -> str:
        return f"AsyncHandle({self.mission_id!r}, pid={self.pid}, status={self.status!r})"
