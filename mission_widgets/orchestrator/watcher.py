"""The orchestrator's watcher: one daemon thread while anything is in flight, none when idle.

It refreshes the orchestrator's mirrors from the store every ``interval`` seconds (sooner
when woken: a worker exited, a mission was queued), which also refills the concurrency
window, and tells subscribers (the panel) after every refresh that changed something. It
exits as soon as nothing is in flight; ``ensure_running()`` starts it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from ..core.listeners import dispatch

Change = TypeVar("Change")

#: Seconds between two refreshes of the watcher (the mirrors lag the store by at most this).
WATCH_INTERVAL = 0.2


class Subscribers(Generic[Change]):
    """Callbacks told about each change; one that raises becomes a RuntimeWarning."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Change], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Add ``callback``; return the function that removes it again."""
        if not callable(callback):
            raise TypeError(f"subscribe() takes a callable, got {callback!r}")
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def notify(self, change: Change) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        dispatch(callbacks, change, what="orchestrator subscriber")


class Watcher:
    """Calls ``refresh()`` every ``interval`` seconds on a thread of its own while
    ``in_flight()`` is true; the thread ends when it becomes false."""

    def __init__(
        self,
        refresh: Callable[[], object],
        in_flight: Callable[[], bool],
        *,
        name: str = "mission-watcher",
        interval: float = WATCH_INTERVAL,
    ) -> None:
        self._refresh = refresh
        self._in_flight = in_flight
        self._name = name
        self.interval = interval
        # Guards the thread's start and its decision to exit, so a mission queued at that
        # moment either keeps the thread or starts a new one.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._woken = threading.Event()
        self._closed = False
        #: The last error a refresh raised (the thread keeps going; status() still works).
        self.last_error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def ensure_running(self) -> None:
        """Start the thread unless it runs (or the watcher was closed)."""
        with self._lock:
            if self._closed or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Refresh now instead of at the end of the interval."""
        self._woken.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread for good (the orchestrator is closed)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._woken.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        # Deadlines, not sleeps: a watcher that nobody wakes runs every ``interval`` seconds
        # however long its refresh takes (the health monitor relies on it); a wake-up
        # refreshes now and starts the period afresh.
        next_at = time.monotonic() + self.interval
        while True:
            woken = self._woken.wait(max(0.0, next_at - time.monotonic()))
            self._woken.clear()
            now = time.monotonic()
            next_at = now + self.interval if woken else max(next_at + self.interval, now)
            if not self._closed:
                try:
                    self._refresh()
                    self.last_error = None
                except Exception as exc:  # a busy or damaged store: try again next time
                    self.last_error = exc
            with self._lock:
                if self._closed or not self._in_flight():
                    self._thread = None
                    return
