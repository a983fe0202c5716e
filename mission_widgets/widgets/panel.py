"""MissionPanel: a header (overall bar, rate and ETA, counts that filter, one line of
controls), a summary by status, a paged list of one-line mission rows, and a static snapshot
that saved notebooks keep.

The panel draws view-models from :mod:`mission_widgets.core.progress` and asks the
orchestrator's public API for everything else. It redraws when the orchestrator says that
something changed (``orch.subscribe``), touching only traits whose value changed, each
widget's inside ``hold_sync()``. Rows exist for one page only, so a store of 100,000
missions costs one page of views per redraw. Every click handler is guarded: an error shows
in the panel and the button comes back enabled.
"""

from __future__ import annotations

import functools
import html
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ..core.errors import describe_error
from ..core.mission import MISSION_STATUSES, Mission
from ..core.progress import (
    FINISHED_STATUSES,
    SEVERITY,
    MissionView,
    OverallView,
    format_overall,
    mission_view,
    overall_view,
    page_count,
    status_style,
)
from .row import MissionRow, fixed, update
from .stall_clock import MIN_REFRESH_INTERVAL, StallClock
from .static import decision_html, details_html, snapshot_html, summary_html

#: Row orders the panel offers: (label, key).
SORT_ORDERS = (("newest first", "newest"), ("oldest first", "oldest"), ("worst first", "status"))


def guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Wrap a click handler: errors go to the panel's message line; the button comes back."""

    @functools.wraps(method)
    def handler(
        self: MissionPanel, button: W.Button | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if button is not None:
            button.disabled = True
        try:
            method(self, button, *args, **kwargs)
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

    ``page_size`` rows per page (widgets exist only for them), newest first by default
    (``sort="oldest"`` / ``"status"``); the panel follows missions that are submitted or
    start onto the visible page, and keeps its place when the user pages.

    The panel redraws when the orchestrator reports a change. ``no_progress_secs``,
    ``heartbeat_timeout_secs`` and ``stall_threshold_secs`` are the stall thresholds it
    reconciles with every ``reconcile_every_secs`` while missions run (``auto_refresh=False``:
    only on Poll); ``refresh_interval`` is how often the static snapshot a saved notebook
    keeps is rewritten while missions run; ``log_lines`` the log tail in the details.
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
        sort: str = "newest",
    ) -> None:
        if not isinstance(page_size, int) or not 1 <= page_size <= 200:
            raise ValueError(f"page_size must be an int in 1..200, got {page_size!r}")
        if refresh_interval < MIN_REFRESH_INTERVAL:
            raise ValueError(
                f"refresh_interval must be >= {MIN_REFRESH_INTERVAL} s, got {refresh_interval!r}"
            )
        sorts = [key for _, key in SORT_ORDERS]
        if sort not in sorts:
            raise ValueError(f"sort must be one of {sorts}, got {sort!r}")
        self.orchestrator = orchestrator
        self.page_size = page_size
        self.stall_threshold_secs = stall_threshold_secs
        self.no_progress_secs = no_progress_secs
        self.heartbeat_timeout_secs = heartbeat_timeout_secs
        self.reconcile_every_secs = reconcile_every_secs
        self.log_lines = log_lines
        self.refresh_interval = refresh_interval
        self.closed = False
        self.page = 0
        self.filter = "all"
        self.following = True
        self._anchor: str | None = None  # first mission of the page the user paged to
        self._reveal: str | None = None  # a mission to bring onto the page at the next draw
        self._seen_running: set[str] = set()
        self._since: tuple[float, int] | None = None  # (time, ended) when work was first seen
        self._views: dict[str, MissionView] = {}
        self._draw_lock = threading.RLock()
        self._submitted_at = 0.0
        self._display_id: str | None = None
        self._snapshot_sent = ("", 0.0)
        self._post_run_cell: Callable[..., None] | None = None
        self.snapshot_class = f"mission-widgets-static-{uuid.uuid4().hex[:12]}"

        self.overall_bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=fixed("220px"))
        self.overall = W.HTML(layout=W.Layout(flex="1 1 auto"))
        # Hides this panel's static snapshot wherever the live widget renders (the snapshot
        # is for viewers without widgets: nbconvert, GitHub, a notebook without its kernel).
        self.snapshot_hider = W.HTML(
            f"<style>.{self.snapshot_class}{{display:none !important}}</style>",
            layout=W.Layout(display="none"),
        )
        self.goal_input = W.Text(
            placeholder="Describe a goal, press Enter",
            continuous_update=False,
            layout=W.Layout(flex="1 1 200px", min_width="160px"),
        )
        self.submit_button = W.Button(
            description="Submit", button_style="primary", icon="play", layout=fixed("96px")
        )
        self.run_queued_button = W.Button(
            description="Run queued", icon="forward", layout=fixed("116px")
        )
        self.poll_button = W.Button(description="Poll", icon="refresh", layout=fixed("80px"))
        self.clear_button = W.Button(
            description="Clear finished",
            icon="trash",
            tooltip="Forget finished missions (rows, logs, files)",
            layout=fixed("136px"),
        )
        self.max_concurrent = W.BoundedIntText(
            value=orchestrator.max_concurrent,
            min=1,
            max=10_000,
            description="at once",
            tooltip="max_concurrent",
            style={"description_width": "50px"},
            layout=fixed("130px"),
        )
        self.sort = W.Dropdown(options=SORT_ORDERS, value=sort, layout=fixed("120px"))
        self.filter_buttons = {
            status: W.Button(layout=W.Layout(width="auto", flex="0 0 auto"))
            for status in ("all", *MISSION_STATUSES)
        }
        self.prev_button = W.Button(description="◀", tooltip="newer", layout=fixed("40px"))
        self.next_button = W.Button(description="▶", tooltip="older", layout=fixed("40px"))
        self.page_label = W.Label(layout=W.Layout(width="auto", flex="0 0 auto"))
        self.summary = W.HTML(layout=W.Layout(width="100%"))
        self.message = W.HTML()
        self.rows_box = W.VBox(layout=W.Layout(width="100%"))
        self.rows: list[MissionRow] = []

        self.goal_input.observe(self._goal_entered, names="value")
        self.submit_button.on_click(self._submit_clicked)
        self.run_queued_button.on_click(self._run_queued_clicked)
        self.poll_button.on_click(self._poll_clicked)
        self.clear_button.on_click(self._clear_clicked)
        self.max_concurrent.observe(self._max_concurrent_changed, names="value")
        self.sort.observe(self._sort_changed, names="value")
        for status, button in self.filter_buttons.items():
            button.on_click(functools.partial(self._filter_clicked, status=status))
        self.prev_button.on_click(self._prev_clicked)
        self.next_button.on_click(self._next_clicked)

        nowrap = W.Layout(width="100%", align_items="center", flex_flow="row nowrap")
        header = W.VBox(
            [
                W.HBox(
                    [
                        W.HTML("<b>Missions</b>", layout=fixed("72px")),
                        self.overall_bar,
                        self.overall,
                        self.snapshot_hider,
                    ],
                    layout=nowrap,
                ),
                W.HBox(
                    [
                        self.goal_input,
                        self.submit_button,
                        self.run_queued_button,
                        self.poll_button,
                        self.clear_button,
                        self.max_concurrent,
                        self.sort,
                    ],
                    layout=nowrap,
                ),
                W.HBox(
                    [
                        *self.filter_buttons.values(),
                        W.HTML(layout=W.Layout(flex="1 1 auto")),
                        self.prev_button,
                        self.page_label,
                        self.next_button,
                    ],
                    layout=W.Layout(width="100%", align_items="center", flex_flow="row wrap"),
                ),
                self.summary,
                self.message,
            ]
        )
        super().__init__([header, self.rows_box], layout=W.Layout(width="100%"))
        self.add_class("mission-widgets-panel")
        self._update_submit_state()
        self.auto_refresh = auto_refresh
        self._refresher = StallClock.of(orchestrator)
        # Listen before the first draw: a change the watcher reports in between (the last
        # one before missions go quiet) would otherwise leave the panel stale for good.
        self._refresher.panels.add(self)
        self.redraw()
        self._refresher.wake()

    # -- what is on the page ------------------------------------------------------------------

    def ordered_ids(self) -> list[str]:
        """Ids of the missions the filter keeps, in the chosen order."""
        missions = self.orchestrator.missions
        if self.filter == "all":
            ids = list(missions)
        else:
            ids = [i for i, m in missions.items() if m.status == self.filter]
        if self.sort.value == "status":
            rank = {status: n for n, status in enumerate(SEVERITY)}
            ids.reverse()  # newest first within a status (the sort is stable)
            ids.sort(key=lambda i: rank.get(missions[i].status, len(rank)))
        elif self.sort.value == "newest":
            ids.reverse()
        return ids

    def _place(self, ids: list[str]) -> None:
        """Choose the page: the one holding a mission to reveal, else (following) one that
        shows a mission that just started, else the page the user was on."""
        size = self.page_size
        running = {m.id for m in self.orchestrator.running}
        started = running - self._seen_running
        self._seen_running = running
        position = {i: n for n, i in enumerate(ids)} if (self._reveal or started) else {}
        if self._reveal is not None and self._reveal in position:
            self.page = position[self._reveal] // size
            self._reveal = None
        elif self.following:
            visible = set(ids[self.page * size : (self.page + 1) * size])
            shown = [position[i] for i in started if i in position]
            if shown and not visible & started:
                self.page = min(shown) // size
        elif self._anchor is not None and self._anchor in ids:
            self.page = ids.index(self._anchor) // size
        self.page = min(max(self.page, 0), page_count(len(ids), size) - 1)
        first = self.page * size
        if self.following or self._anchor is None or self._anchor not in ids[first : first + size]:
            self._anchor = ids[first] if first < len(ids) else None

    def page_views(self) -> tuple[list[MissionView], int]:
        """View-models of the current page, and the number of pages."""
        ids = self.ordered_ids()
        self._place(ids)
        start = self.page * self.page_size
        now = time.time()
        views = [
            mission_view(self.orchestrator.get(i), now) for i in ids[start : start + self.page_size]
        ]
        self._views = {view.mission_id: view for view in views}
        return views, page_count(len(ids), self.page_size)

    def _overall(self, counts: dict[str, int]) -> OverallView:
        """The overall view; the rate counts from when the panel first saw work."""
        now = time.time()
        in_flight = sum(1 for m in self.orchestrator.running if m.status in FINISHED_STATUSES)
        view = overall_view(counts, now, self._since, in_flight)
        if view.ended == view.total:
            self._since = None
        elif self._since is None:
            self._since = (now, view.ended)
        return view

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
            overall = self._overall(counts)
            update(self.overall_bar, value=overall.fraction, bar_style=overall.style.bar_style)
            update(self.overall_bar.style, bar_color=overall.style.colour)
            update(self.overall, value=html.escape(format_overall(overall)))
            self._draw_filters(counts)
            update(self.page_label, value=f"page {self.page + 1}/{pages}")
            update(self.prev_button, disabled=self.page == 0)
            update(self.next_button, disabled=self.page >= pages - 1)
            update(self.summary, value=summary_html(counts) if pages > 1 else "")
            update(self.max_concurrent, value=self.orchestrator.max_concurrent)
            redrawn = self._draw_rows(views)
        self._refresh_snapshot(views, counts, overall)
        return redrawn

    def _draw_filters(self, counts: dict[str, int]) -> None:
        total = sum(counts.values())
        for status, button in self.filter_buttons.items():
            n = total if status == "all" else counts.get(status, 0)
            style = status_style(status)
            glyph = "" if status == "all" else f"{style.glyph} "
            active = status == self.filter
            update(
                button,
                description=f"{glyph}{n} {status}",
                tooltip=f"show {status} missions only" if status != "all" else "show all",
                button_style="info" if active else "",
            )
            update(button.style, text_color="" if active or status == "all" else style.colour)
            update(button.layout, display="" if n or active or status == "all" else "none")

    def _draw_rows(self, views: list[MissionView]) -> int:
        while len(self.rows) < len(views):  # grow the row pool up to one page, never more
            self.rows.append(MissionRow(self))
        visible = tuple(self.rows[: len(views)])
        if self.rows_box.children != visible:
            self.rows_box.children = visible
        # Cancel shows only where the backend that runs a mission can still stop it.
        cancellable = self.orchestrator.cancellable(v.mission_id for v in views if not v.finished)
        return sum(
            row.bind(view, view.mission_id in cancellable) for row, view in zip(self.rows, views)
        )

    def show_error(self, text: str) -> None:
        colour = status_style("failed").colour
        self.message.value = f'<span style="color:{colour}">&#10060; {html.escape(text)}</span>'

    def show_info(self, text: str) -> None:
        colour = status_style("succeeded").colour
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'

    def _update_submit_state(self) -> None:
        if self.orchestrator.global_model is None:
            update(self.submit_button, disabled=True, tooltip="Submit needs a model")
            self.goal_input.placeholder = "Submit needs a model: MissionOrchestrator(model=...)"
        else:
            update(self.submit_button, disabled=False, tooltip="Run this goal as a new mission")

    # -- what rows ask (RowActions) -----------------------------------------------------------

    def cancel(self, mission_id: str, button: W.Button) -> None:
        self._cancel(button, mission_id)

    def decide(self, mission_id: str, action: str, button: W.Button) -> None:
        self._decide(button, mission_id, action)

    def explain(self, mission_id: str, button: W.Button) -> None:
        self._explain(button, mission_id)

    def details_html(self, mission_id: str) -> str:
        mission = self.orchestrator.get(mission_id)
        return details_html(
            list(mission.steps or []),
            self._views.get(mission_id),
            self.orchestrator.log_tail(mission_id, self.log_lines),
        )

    def decision_html(self, mission_id: str, step_id: str) -> str:
        mission = self.orchestrator.get(mission_id)
        for step in mission.steps or []:
            if step.id == step_id:
                return decision_html(step)
        return f"<b>Waiting for your decision at step {html.escape(step_id)}</b>"

    # -- actions ----------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        result: list[str] = self.orchestrator.reconcile(
            self.stall_threshold_secs,
            heartbeat_timeout_secs=self.heartbeat_timeout_secs,
            no_progress_secs=self.no_progress_secs,
        )
        return result

    def _goal_entered(self, change: dict[str, Any]) -> None:
        """Enter in the goal box (``continuous_update=False``: the value arrives on Enter)."""
        if change["new"].strip():
            self._submit_clicked(None)

    @guarded
    def _submit_clicked(self, button: W.Button | None) -> None:
        if self.orchestrator.global_model is None:
            raise ValueError("Submit needs a model: create the orchestrator with model=...")
        goal = self.goal_input.value.strip()
        if not goal:
            if time.monotonic() - self._submitted_at < 2.0:
                return  # the goal went in on Enter (or when the box lost focus) just now
            raise ValueError("type a goal first")
        handle = self.orchestrator.run_async(Mission(goal))
        self._submitted_at = time.monotonic()
        self._reveal = handle.mission_id
        self.following = True
        self.goal_input.value = ""
        self.show_info(f"started {handle.mission_id}")
        self._wake()

    @guarded
    def _run_queued_clicked(self, button: W.Button | None) -> None:
        started = self.orchestrator.start_queued()
        self.show_info(f"started {len(started)} queued mission(s)")
        self._wake()

    @guarded
    def _poll_clicked(self, button: W.Button | None) -> None:
        result = self.orchestrator.poll_async()
        flagged = self.reconcile()
        note = f"; no heartbeat or no progress: {', '.join(flagged)}" if flagged else ""
        self.show_info(
            f"polled: {len(result.completed)} finished, {result.still_running} running{note}"
        )

    @guarded
    def _clear_clicked(self, button: W.Button | None) -> None:
        cleared = self.orchestrator.clear_finished()
        self.show_info(f"cleared {len(cleared)} finished mission(s)")

    @guarded
    def _cancel(self, button: W.Button | None, mission_id: str) -> None:
        with self._refresher.busy:
            cancelled = self.orchestrator.cancel(mission_id)
        if cancelled:
            self.show_info(f"cancelled {mission_id}")
        else:
            self.show_info(f"{mission_id} had already finished")

    @guarded
    def _decide(self, button: W.Button | None, mission_id: str, action: str) -> None:
        self.orchestrator.decide(mission_id, action)
        self.show_info(f"{action}: sent to {mission_id}")

    @guarded
    def _explain(self, button: W.Button | None, mission_id: str) -> None:
        text = self.orchestrator.explain(mission_id)
        for row in self.rows:
            if row.mission_id == mission_id:
                row.show_explanation(text)

    @guarded
    def _filter_clicked(self, button: W.Button | None, status: str) -> None:
        self.filter = status
        self.page, self.following, self._anchor = 0, True, None

    def _sort_changed(self, change: dict[str, Any]) -> None:
        self.page, self.following, self._anchor = 0, True, None
        self.redraw()

    def _max_concurrent_changed(self, change: dict[str, Any]) -> None:
        try:
            if self.orchestrator.max_concurrent != change["new"]:
                self.orchestrator.max_concurrent = change["new"]
                self.orchestrator.poll_async()  # a bigger window starts queued missions now
                self.redraw()
        except Exception as exc:
            self.show_error(describe_error(exc))

    @guarded
    def _prev_clicked(self, button: W.Button | None) -> None:
        self.page, self._anchor = max(0, self.page - 1), None
        self.following = self.page == 0  # back on the first page: follow new missions again

    @guarded
    def _next_clicked(self, button: W.Button | None) -> None:
        self.page, self._anchor = self.page + 1, None
        self.following = False

    def _wake(self) -> None:
        self._refresher.wake()

    # -- saved notebooks ------------------------------------------------------------------------

    def snapshot_html(self) -> str:
        """The panel as static HTML (the current page), for viewers without widgets."""
        with self._draw_lock:
            views, _ = self.page_views()
            counts = self.orchestrator.counts()
            overall = self._overall(counts)
        return self._snapshot(views, counts, overall)

    def _snapshot(
        self, views: list[MissionView], counts: dict[str, int], overall: OverallView
    ) -> str:
        shown = (len(views), sum(counts.values()))
        return snapshot_html(views, counts, overall, hide_class=self.snapshot_class, shown_of=shown)

    def _refresh_snapshot(
        self,
        views: list[MissionView],
        counts: dict[str, int],
        overall: OverallView,
        force: bool = False,
    ) -> None:
        """Rewrite the displayed snapshot (through its display id), at most every
        ``refresh_interval`` seconds while missions run, at once when they have all ended."""
        if self._display_id is None:
            return
        text = self._snapshot(views, counts, overall)
        sent, at = self._snapshot_sent
        now = time.monotonic()
        settled = overall.ended == overall.total
        if text == sent or not (force or settled or now - at >= self.refresh_interval):
            return
        from IPython.display import update_display

        update_display({"text/html": text}, raw=True, display_id=self._display_id)
        self._snapshot_sent = (text, now)

    def _after_cell(self, *args: Any) -> None:
        """After every cell: the saved snapshot shows the state the cell left."""
        if self.closed:
            return
        with self._draw_lock:
            views, _ = self.page_views()
            counts = self.orchestrator.counts()
            overall = self._overall(counts)
        self._refresh_snapshot(views, counts, overall, force=True)

    def _text_summary(self) -> str:
        """What a viewer with neither widgets nor HTML shows (the widget's repr is a
        screenful of traits). No figures: this output is never updated, the snapshot is."""
        return f"MissionPanel of the missions in {self.orchestrator.store.root}"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data = super()._repr_mimebundle_(**kwargs) or {}
        data["text/html"] = self.snapshot_html()
        data["text/plain"] = self._text_summary()
        return data

    def _ipython_display_(self, **kwargs: Any) -> None:
        """Two outputs: the live widget, and a static snapshot kept current through a
        display id (what nbconvert, GitHub and a kernel-less JupyterLab show; hidden where
        the widget renders)."""
        from IPython import get_ipython
        from IPython.display import display

        bundle = W.VBox._repr_mimebundle_(self, **kwargs) or {}
        bundle.pop("text/html", None)
        bundle["text/plain"] = self._text_summary()
        display(bundle, raw=True)
        self._display_id = self._display_id or f"mission-panel-{uuid.uuid4().hex}"
        text = self.snapshot_html()
        display({"text/html": text}, raw=True, display_id=self._display_id)
        self._snapshot_sent = (text, time.monotonic())
        shell = get_ipython()
        if shell is not None and self._post_run_cell is None:
            self._post_run_cell = _weak_method(self._after_cell)
            shell.events.register("post_run_cell", self._post_run_cell)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def refreshing(self) -> bool:
        """Whether the panel's stall clock is running (while missions are in flight)."""
        return self._refresher.running

    def close(self) -> None:
        """Stop listening and close every widget of the panel."""
        if self.__dict__.get("closed", True):  # closed, or __init__ never finished
            super().close()
            return
        self.closed = True
        refresher = self.__dict__.get("_refresher")
        if refresher is not None:
            refresher.panels.discard(self)
            refresher.wake()
        if self._post_run_cell is not None:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None:
                shell.events.unregister("post_run_cell", self._post_run_cell)
        for row in self.rows:  # pooled rows may be off the page
            _close_tree(row)
        _close_tree(self)


def _weak_method(method: Callable[..., None]) -> Callable[..., None]:
    """A callback that calls ``method`` while its object lives (an IPython event hook must
    not keep a closed panel alive)."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args)

    return call


def _close_tree(widget: W.Widget) -> None:
    """Close a widget and every widget below it (rows, header controls, layouts stay)."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    W.Widget.close(widget)
