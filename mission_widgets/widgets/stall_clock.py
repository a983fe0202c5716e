"""What keeps one orchestrator's open panels current: a redraw on each change it reports.

The panels only draw. Health (a worker whose heartbeat or progress stopped) is checked by
the orchestrator itself, on a fixed schedule (``orchestrator/health.py``), and arrives here
as one more change: the flag is in the mission's ``stall_reason``. No thread of its own.
"""

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

    def request_redraw(self) -> None: ...

    def show_error(self, text: str) -> None: ...


#: Fastest auto-refresh allowed (seconds): a few redraws a second at most.
MIN_REFRESH_INTERVAL = 0.25


class StallClock:
    """The redraw fan-out shared by one orchestrator's panels (``orch.subscribe``)."""

    _by_orchestrator: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    _registry_lock = threading.Lock()

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator
        self.panels: weakref.WeakSet[Redrawable] = weakref.WeakSet()
        # Held while a panel cancels: a redraw in the middle of it shows a half-done state.
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
        """Whether open, auto-refreshing panels follow missions in flight (the
        orchestrator's watcher and health monitor run while anything is in flight)."""
        active = [p for p in list(self.panels) if not p.closed and p.auto_refresh]
        return bool(active) and bool(getattr(self.orchestrator, "watching", False))

    def on_change(self, *change: Any) -> None:
        """The orchestrator changed (from its watcher thread, or on a submit): redraw."""
        for panel in list(self.panels):
            if not panel.closed:
                try:
                    panel.request_redraw()  # coalesced: 40 submits are not 40 draws
                except Exception as exc:  # a redraw must never break the watcher
                    panel.show_error(f"redraw failed: {describe_error(exc)}")

    def wake(self) -> None:
        """Something changed that the orchestrator may not report (a panel opened or
        closed): nothing to start, the next change redraws."""
