"""The clock shared by the open panels of one orchestrator: redraws on its changes and, while
missions run, flags stalls with the panels' thresholds (a silent worker reports nothing)."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Protocol

from ..core.errors import describe_error


class Redrawable(Protocol):
    """What the clock asks of a panel (MissionPanel is one): named here so this module
    needs nothing above it."""

    closed: bool
    auto_refresh: bool
    reconcile_every_secs: float

    def request_redraw(self) -> None: ...

    def show_error(self, text: str) -> None: ...

    def reconcile(self) -> list[str]: ...


#: Fastest auto-refresh allowed (seconds): a few redraws a second at most.
MIN_REFRESH_INTERVAL = 0.25


class StallClock:
    """What keeps one orchestrator's open panels current, shared by them.

    The panels redraw when the orchestrator reports a change (``orch.subscribe``, from its
    watcher thread). A silent worker changes nothing, though, so while missions are in
    flight a thread of this clock calls ``reconcile()`` every ``reconcile_every_secs`` with
    the panels' stall thresholds; it stops when nothing runs or no panel refreshes.
    """

    _by_orchestrator: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    _registry_lock = threading.Lock()

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator
        self.panels: weakref.WeakSet[Redrawable] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Held while reconciling and while a panel cancels: a poll in the middle of a cancel
        # saw the stopped worker as "exited unexpectedly" and failed the mission.
        self.busy = threading.RLock()
        orchestrator.subscribe(self.on_change)

    @classmethod
    def of(cls, orchestrator: Any) -> StallClock:
        with cls._registry_lock:
            clock = cls._by_orchestrator.get(orchestrator)
            if clock is None:
                clock = cls(orchestrator)
                cls._by_orchestrator[orchestrator] = clock
            return clock

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _active_panels(self) -> list[Redrawable]:
        return [p for p in list(self.panels) if not p.closed and p.auto_refresh]

    def on_change(self, *change: Any) -> None:
        """The orchestrator changed (from its watcher thread, or on a submit): redraw."""
        for panel in list(self.panels):
            if not panel.closed:
                try:
                    panel.request_redraw()  # coalesced: 40 submits are not 40 draws
                except Exception as exc:  # a redraw must never break the watcher
                    panel.show_error(f"redraw failed: {describe_error(exc)}")
        self.wake()

    def wake(self) -> None:
        """Start the clock if it is not running, else make it look again now (a panel
        closed, missions started)."""
        with self._lock:
            if self.running:
                self._wake.set()
                return
            if not self._active_panels():
                return
            self._thread = threading.Thread(
                target=self._loop, name="mission-panel-stall-clock", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            panels = self._active_panels()
            with self._lock:
                if not panels or not self.orchestrator.active:
                    self._thread = None
                    return
            every = max(MIN_REFRESH_INTERVAL, min(p.reconcile_every_secs for p in panels))
            if self._wake.wait(every):
                self._wake.clear()
                continue
            self.tick(panels)

    def tick(self, panels: list[Redrawable]) -> None:
        """Flag stalled missions with the panels' thresholds (the orchestrator's watcher
        then reports the change, which redraws)."""
        try:
            with self.busy:
                panels[0].reconcile()
        except Exception as exc:  # a store hiccup must not stop the clock
            for panel in panels:
                panel.show_error(f"stall check failed: {describe_error(exc)}")
