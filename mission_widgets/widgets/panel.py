"""MissionPanel: header controls, a paged list of mission rows, and the auto-refresh loop.

One daemon refresh thread per orchestrator (shared by its panels) polls the store, runs
``reconcile`` now and then, and redraws only rows whose view changed, at most a few times a
second; it stops when its panels are closed or nothing is queued or running. Every click
handler is guarded: an error shows in the panel and the button comes back enabled.
"""

from __future__ import annotations

import functools
import html
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..core.errors import describe_error
from ..core.mission import MISSION_STATUSES, Mission
from ..core.progress import MissionView, mission_view
from .row import MissionRow, steps_table
from .static import static_table

#: Fastest auto-refresh allowed (seconds): a few redraws a second at most.
MIN_REFRESH_INTERVAL = 0.25


class _Refresher:
    """The single refresh thread of one orchestrator, shared by its open panels."""

    _by_orchestrator: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    _registry_lock = threading.Lock()

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator
        self.panels: weakref.WeakSet[MissionPanel] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_reconcile = 0.0
        orchestrator.add_listener(self.on_change)

    @classmethod
    def of(cls, orchestrator: Any) -> _Refresher:
        with cls._registry_lock:
            refresher = cls._by_orchestrator.get(orchestrator)
            if refresher is None:
                refresher = cls(orchestrator)
                cls._by_orchestrator[orchestrator] = refresher
            return refresher

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _active_panels(self) -> list[MissionPanel]:
        return [p for p in list(self.panels) if not p.closed and p.auto_refresh.value]

    def on_change(self) -> None:
        """Missions were queued or started: show them now (with or without auto-refresh)."""
        for panel in list(self.panels):
            if not panel.closed:
                panel.redraw()
        self.wake()

    def wake(self) -> None:
        """Start the loop if it is not running, else make it refresh now."""
        with self._lock:
            if not self._active_panels():
                return
            if self.running:
                self._wake.set()
                return
            self._thread = threading.Thread(
                target=self._loop, name="mission-panel-refresh", daemon=True
            )
            self._thread.start()

    def _busy(self) -> bool:
        return self.orchestrator.active

    def _loop(self) -> None:
        while True:
            panels = self._active_panels()
            if not panels:
                break
            self.tick(panels)
            interval = max(MIN_REFRESH_INTERVAL, min(p.interval.value for p in panels))
            with self._lock:
                if not self._busy() and not self._wake.is_set():
                    self._thread = None
                    for panel in panels:
                        panel._set_refresh_note("idle: nothing running")
                    return
            self._wake.wait(interval)
            self._wake.clear()
        with self._lock:
            self._thread = None

    def tick(self, panels: list[MissionPanel]) -> None:
        """One refresh: poll, maybe reconcile, redraw."""
        try:
            self.orchestrator.poll_async()
            now = time.monotonic()
            reconcile_every = min(p.reconcile_every_secs for p in panels)
            if now - self._last_reconcile >= reconcile_every:
                self._last_reconcile = now
                panels[0].reconcile()
        except Exception as exc:  # a store hiccup must not kill the loop
            for panel in panels:
                panel.show_error(f"refresh failed: {describe_error(exc)}")
        for panel in panels:
            panel.redraw()
            panel._set_refresh_note("auto-refresh on")


def guarded(method: Callable) -> Callable:
    """Wrap a click handler: errors go to the panel's message line; the button comes back."""

    @functools.wraps(method)
    def handler(self: MissionPanel, button: W.Button | None = None, *args: Any) -> None:
        if button is not None:
            button.disabled = True
        try:
            method(self, button, *args)
        except Exception as exc:
            self.show_error(describe_error(exc))
        finally:
            if button is not None:
                button.disabled = False
            self._update_submit_state()
            self.redraw(force=True)  # buttons whose state depends on the mission (Cancel)

    return handler


class MissionPanel(W.VBox):
    """The live panel of an orchestrator's missions.

    ``page_size`` rows per page (widgets exist only for them), a status filter, header
    controls (Submit, Run queued, Poll, max_concurrent, auto-refresh), per-row progress,
    stall badges, Cancel and details.
    """

    def __init__(
        self,
        orchestrator: Any,
        *,
        page_size: int = 25,
        refresh_interval: float = 1.0,
        auto_refresh: bool = True,
        stall_threshold_secs: float = 600,
        no_progress_secs: float | None = None,
        heartbeat_timeout_secs: float | None = None,
        reconcile_every_secs: float = 5.0,
        log_lines: int = 30,
    ) -> None:
        if not isinstance(page_size, int) or not 1 <= page_size <= 200:
            raise ValueError(f"page_size must be an int in 1..200, got {page_size!r}")
        if refresh_interval < MIN_REFRESH_INTERVAL:
            raise ValueError(
                f"refresh_interval must be >= {MIN_REFRESH_INTERVAL} s, got {refresh_interval!r}"
            )
        self.orchestrator = orchestrator
        self.page_size = page_size
        self.stall_threshold_secs = stall_threshold_secs
        self.no_progress_secs = no_progress_secs
        self.heartbeat_timeout_secs = heartbeat_timeout_secs
        self.reconcile_every_secs = reconcile_every_secs
        self.log_lines = log_lines
        self.closed = False
        self.page = 0
        self._draw_lock = threading.RLock()

        self.counts = W.HTML()
        self.max_concurrent = W.BoundedIntText(
            value=orchestrator.max_concurrent,
            min=1,
            max=10_000,
            description="Max concurrent",
            style={"description_width": "initial"},
            layout=W.Layout(width="170px"),
        )
        self.goal_input = W.Text(
            placeholder="Describe a goal, then Submit", layout=W.Layout(width="320px")
        )
        self.submit_button = W.Button(description="Submit", button_style="primary", icon="play")
        self.submit_reason = W.HTML()
        self.run_queued_button = W.Button(description="Run queued", icon="forward")
        self.poll_button = W.Button(description="Poll", icon="refresh")
        self.auto_refresh = W.ToggleButton(
            value=auto_refresh, description="Auto-refresh", icon="clock-o"
        )
        self.interval = W.BoundedFloatText(
            value=refresh_interval,
            min=MIN_REFRESH_INTERVAL,
            max=600,
            step=0.25,
            description="every (s)",
            layout=W.Layout(width="150px"),
        )
        self.refresh_note = W.Label()
        self.status_filter = W.Dropdown(
            options=["all", *MISSION_STATUSES],
            value="all",
            description="Show",
            layout=W.Layout(width="180px"),
        )
        self.prev_button = W.Button(description="◀", layout=W.Layout(width="40px"))
        self.next_button = W.Button(description="▶", layout=W.Layout(width="40px"))
        self.page_label = W.Label()
        self.message = W.HTML()
        self.rows_box = W.VBox(layout=W.Layout(width="100%"))
        self.rows: list[MissionRow] = []

        self.max_concurrent.observe(self._max_concurrent_changed, names="value")
        self.submit_button.on_click(self._submit_clicked)
        self.run_queued_button.on_click(self._run_queued_clicked)
        self.poll_button.on_click(self._poll_clicked)
        self.auto_refresh.observe(self._auto_refresh_changed, names="value")
        self.status_filter.observe(self._filter_changed, names="value")
        self.prev_button.on_click(self._prev_clicked)
        self.next_button.on_click(self._next_clicked)

        header = W.VBox(
            [
                W.HBox([W.HTML("<b>Missions</b>&nbsp;"), self.counts]),
                W.HBox([self.goal_input, self.submit_button, self.submit_reason]),
                W.HBox(
                    [
                        self.run_queued_button,
                        self.poll_button,
                        self.max_concurrent,
                        self.auto_refresh,
                        self.interval,
                        self.refresh_note,
                    ]
                ),
                W.HBox([self.status_filter, self.prev_button, self.page_label, self.next_button]),
                self.message,
            ]
        )
        super().__init__([header, self.rows_box], layout=W.Layout(width="100%"))
        self.add_class("mission-widgets-panel")
        self._update_submit_state()
        self.redraw()
        self._refresher = _Refresher.of(orchestrator)
        self._refresher.panels.add(self)
        if auto_refresh:
            self._refresher.wake()

    # -- view-models ------------------------------------------------------------------------

    def _filtered(self) -> list[Mission]:
        missions = list(self.orchestrator.missions.values())
        wanted = self.status_filter.value
        if wanted == "all":
            return missions
        return [m for m in missions if m.status == wanted]

    def page_views(self) -> tuple[list[MissionView], int]:
        """View-models of the current page, and the number of pages."""
        missions = self._filtered()
        pages = max(1, -(-len(missions) // self.page_size))
        self.page = min(self.page, pages - 1)
        start = self.page * self.page_size
        now = time.time()
        running = {m.id for m in self.orchestrator.running}
        views = []
        for mission in missions[start : start + self.page_size]:
            view = mission_view(mission, now)
            if view.finished and mission.id in running:
                # Only flagged stalled by reconcile(): its worker may still run, so the row
                # must keep its Cancel button (it was disabled, leaving no way to stop it).
                view = view._replace(finished=False)
            views.append(view)
        return views, pages

    # -- drawing ----------------------------------------------------------------------------

    def redraw(self, force: bool = False) -> int:
        """Bring header and visible rows up to date; returns how many rows were redrawn."""
        if self.closed:
            return 0
        with self._draw_lock:
            if force:
                for row in self.rows:
                    row.forget()
            views, pages = self.page_views()
            counts = self.orchestrator.counts()
            with self.hold_sync():
                self._draw_counts(counts)
                self._set(self.page_label, "value", f"page {self.page + 1}/{pages}")
                self._set(self.prev_button, "disabled", self.page == 0)
                self._set(self.next_button, "disabled", self.page >= pages - 1)
                self._set(self.max_concurrent, "value", self.orchestrator.max_concurrent)
            return self._draw_rows(views)

    def _draw_counts(self, counts: dict[str, int]) -> None:
        parts = [f"{n} {status}" for status, n in counts.items() if n]
        self._set(self.counts, "value", " · ".join(parts) or "no missions yet")

    def _draw_rows(self, views: list[MissionView]) -> int:
        while len(self.rows) < len(views):  # grow the row pool up to one page, never more
            self.rows.append(MissionRow(self._cancel_clicked, self._details))
        visible = tuple(self.rows[: len(views)])
        if self.rows_box.children != visible:
            self.rows_box.children = visible
        redrawn = 0
        for row, view in zip(self.rows, views):
            redrawn += row.bind(view)
        return redrawn

    @staticmethod
    def _set(widget: W.Widget, name: str, value: Any) -> None:
        if getattr(widget, name) != value:
            setattr(widget, name, value)

    def show_error(self, text: str) -> None:
        self.message.value = f'<span style="color:#c62828">&#10060; {html.escape(text)}</span>'

    def show_info(self, text: str) -> None:
        self.message.value = f'<span style="color:#2e7d32">{html.escape(text)}</span>'

    def _set_refresh_note(self, text: str) -> None:
        self._set(self.refresh_note, "value", text)

    def _update_submit_state(self) -> None:
        if self.orchestrator.global_model is None:
            self.submit_button.disabled = True
            self.submit_button.tooltip = "Submit needs a model"
            self.submit_reason.value = "<i>Submit needs a model: MissionOrchestrator(model=...)</i>"
        else:
            self.submit_button.disabled = False
            self.submit_button.tooltip = "Run this goal as a new mission"
            self.submit_reason.value = ""

    # -- actions ----------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        return self.orchestrator.reconcile(
            self.stall_threshold_secs,
            heartbeat_timeout_secs=self.heartbeat_timeout_secs,
            no_progress_secs=self.no_progress_secs,
        )

    @guarded
    def _submit_clicked(self, button: W.Button | None) -> None:
        if self.orchestrator.global_model is None:
            raise ValueError("Submit needs a model: create the orchestrator with model=...")
        goal = self.goal_input.value.strip()
        if not goal:
            raise ValueError("type a goal first")
        handle = self.orchestrator.run_async(Mission(goal))
        self.goal_input.value = ""
        self.show_info(f"started {handle.mission_id}")
        self.redraw()
        self._refresher.wake()

    @guarded
    def _run_queued_clicked(self, button: W.Button | None) -> None:
        started = self.orchestrator.start_queued()
        self.show_info(f"started {len(started)} queued mission(s)")
        self.redraw()
        self._refresher.wake()

    @guarded
    def _poll_clicked(self, button: W.Button | None) -> None:
        result = self.orchestrator.poll_async()
        stalled = self.reconcile()
        note = f"; stalled: {', '.join(stalled)}" if stalled else ""
        self.show_info(
            f"polled: {len(result.completed)} finished, {result.still_running} running{note}"
        )
        self.redraw()

    def _cancel_clicked(self, mission_id: str, button: W.Button) -> None:
        self._cancel(button, mission_id)

    @guarded
    def _cancel(self, button: W.Button | None, mission_id: str) -> None:
        if self.orchestrator.cancel(mission_id):
            self.show_info(f"cancelled {mission_id}")
        else:
            self.show_info(f"{mission_id} had already finished")
        self.redraw()

    def _details(self, mission_id: str) -> tuple[str, str]:
        mission = self.orchestrator.get(mission_id)
        steps = [
            {
                "id": s.id,
                "status": s.status + (" (skipped)" if s.skipped else ""),
                "retries": s.retry_count,
                "error": s.last_error,
            }
            for s in mission.steps or []
        ]
        return steps_table(steps), self.orchestrator.log_tail(mission_id, self.log_lines)

    def _max_concurrent_changed(self, change: dict) -> None:
        try:
            if self.orchestrator.max_concurrent != change["new"]:
                self.orchestrator.max_concurrent = change["new"]
                self.orchestrator.poll_async()  # a bigger window starts queued missions now
                self.redraw()
        except Exception as exc:
            self.show_error(describe_error(exc))

    def _auto_refresh_changed(self, change: dict) -> None:
        if change["new"]:
            self._refresher.wake()
            self._set_refresh_note("auto-refresh on")
        else:
            self._set_refresh_note("auto-refresh off")

    def _filter_changed(self, change: dict) -> None:
        self.page = 0
        self.redraw()

    @guarded
    def _prev_clicked(self, button: W.Button | None) -> None:
        self.page = max(0, self.page - 1)
        self.redraw()

    @guarded
    def _next_clicked(self, button: W.Button | None) -> None:
        self.page += 1
        self.redraw()

    # -- lifecycle and display ----------------------------------------------------------------

    @property
    def refreshing(self) -> bool:
        """Whether the auto-refresh thread is running."""
        return self._refresher.running

    def close(self) -> None:
        """Stop refreshing and close every widget of the panel."""
        if self.__dict__.get("closed", True):  # closed, or __init__ never finished
            super().close()
            return
        self.closed = True
        refresher = self.__dict__.get("_refresher")
        if refresher is not None:
            refresher.panels.discard(self)
            refresher.wake()
        for row in self.rows:  # pooled rows may be off the page
            _close_tree(row)
        _close_tree(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}
        views, _ = self.page_views()
        data["text/html"] = static_table(
            views, self.orchestrator.counts(), len(self.orchestrator.missions)
        )
        return data


def _close_tree(widget: W.Widget) -> None:
    """Close a widget and every widget below it (rows, header controls, layouts stay)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    W.Widget.close(widget)
