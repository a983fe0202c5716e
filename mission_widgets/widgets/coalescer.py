"""Coalesced work in a thread of its own: any number of requests, one run at most every
``interval`` seconds (the panel's redraws, and its open Timeline view's)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Coalescer:
    """Runs ``draw`` in a thread of its own after any number of requests, at most once per
    ``interval`` seconds; the thread ends when no request is left. ``interval`` may be
    changed at any time (the next wait uses it)."""

    def __init__(
        self, draw: Callable[[], Any], interval: float, name: str = "mission-panel-draw"
    ) -> None:
        self._draw = draw
        self.interval = interval
        self._name = name
        self._lock = threading.Lock()
        self._pending = False
        self._thread: threading.Thread | None = None
        self._last = 0.0
        self._stop = threading.Event()

    def request(self) -> None:
        with self._lock:
            self._pending = True
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending or self._stop.is_set():
                    self._thread = None
                    return
            # Wait out the interval since the last draw (requests meanwhile join this draw).
            if self._stop.wait(max(self._last + self.interval - time.monotonic(), 0.0)):
                continue
            with self._lock:
                self._pending = False
            self._last = time.monotonic()
            self._draw()

    @property
    def running(self) -> bool:
        """Whether its thread is alive (it is only while requests come)."""
        with self._lock:
            return self._thread is not None

    def stop(self) -> None:
        self._stop.set()
