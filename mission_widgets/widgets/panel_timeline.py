"""The panel's Timeline view: the picture ``orch.timeline()`` draws (its ``to_html()``: our
own SVG and HTML, every text escaped), kept current while the view is open.

Costs nothing while it is closed: no picture is drawn and no thread runs. While it is open,
a change the orchestrator reports asks for a redraw; redraws are coalesced (at most one
every ``TIMELINE_INTERVAL`` seconds, in a thread) and skipped when what the picture is drawn
from did not change (the store's last event, the number of missions, the page). While the
picture has missions running, it is redrawn every interval even without events, so its
"now" line and the running bars move on. A big store that takes long to draw is drawn less
often (``DRAW_SHARE``), so the view never takes the kernel for itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import describe_error
from .coalescer import Coalescer

#: Fewest seconds between two redraws of the open Timeline view.
TIMELINE_INTERVAL = 1.0
#: Most of the kernel's time the open view may take: after a draw that took d seconds, the
#: next comes no sooner than d / DRAW_SHARE seconds later.
DRAW_SHARE = 0.2

#: ``publish(html, page, pages)``: what the panel sends its browser.
Publish = Callable[[str, int, int], None]


class TimelineView:
    """One panel's Timeline view over ``orchestrator`` (see the module's docstring)."""

    def __init__(self, orchestrator: Any, publish: Publish, on_error: Callable[[str], None]):
        self.orchestrator = orchestrator
        self._publish = publish
        self._on_error = on_error
        self.open = False
        self.page = 1
        self.pages = 1
        #: Pictures drawn so far, and the "now" of the last one (what tests and the bench read).
        self.draws = 0
        self.drawn_at: float | None = None
        self._source: tuple[int, int, int] | None = None
        self._moving = False
        self._lock = threading.RLock()
        self._coalescer = Coalescer(self._tick, TIMELINE_INTERVAL, name="mission-panel-timeline")

    @property
    def refreshing(self) -> bool:
        """Whether its redraw thread runs (only while the view is open and things change)."""
        return self._coalescer.running

    def show(self, open: bool) -> None:
        """Open the view (drawn at once) or close it (its picture is dropped)."""
        with self._lock:
            self.open = open
            self._source = None
            if open:
                self._draw()
            else:
                self._moving = False
                self._publish("", self.page, self.pages)

    def set_page(self, page: int) -> None:
        """Show the ``page``-th page (1-based) of the picture's missions."""
        if isinstance(page, bool) or not isinstance(page, int):
            raise ValueError(f"timeline page must be a whole number, got {page!r}")
        with self._lock:
            if not 1 <= page <= self.pages:
                raise ValueError(f"timeline page must be 1..{self.pages}, got {page}")
            self.page = page
            if self.open:
                self._draw()

    def request(self) -> None:
        """Something changed: redraw soon if the view is open (coalesced)."""
        if self.open:
            self._coalescer.request()

    def refresh(self) -> bool:
        """Redraw now if what the picture shows changed or its "now" line moves; True if
        it did."""
        with self._lock:
            if not self.open:
                return False
            source = self._source_now()
            if source == self._source and not self._moving:
                return False
            self._draw(source)
            return True

    def stop(self) -> None:
        self._coalescer.stop()

    def _tick(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # a store that cannot be read now: say so, try again later
            self._on_error(f"timeline: {describe_error(exc)}")
        if self.open and self._moving:
            self._coalescer.request()  # the "now" line moves on without events

    def _source_now(self) -> tuple[int, int, int]:
        orch = self.orchestrator
        return (orch.store.max_seq(), len(orch.missions), self.page)

    def _draw(self, source: tuple[int, int, int] | None = None) -> None:
        started = time.perf_counter()
        # Read before the picture: an event that lands in between makes the next redraw.
        source = source or self._source_now()
        timeline = self.orchestrator.timeline()
        self.pages = timeline.pages
        self.page = min(self.page, timeline.pages)
        picture = timeline if self.page == 1 else timeline.page(self.page)
        text = picture.to_html()
        self._moving = any(t.start is not None and t.end is None for t in timeline.all_traces)
        self._source = source[:2] + (self.page,)
        self.draws += 1
        self.drawn_at = timeline.now
        self._publish(text, self.page, self.pages)
        spent = time.perf_counter() - started
        self._coalescer.interval = max(TIMELINE_INTERVAL, spent / DRAW_SHARE)
