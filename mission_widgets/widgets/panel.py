"""MissionPanel: one anywidget. Python computes what to show (``panel_state``) and syncs it as
one traitlet, ``view``; the browser (``panel.js`` + ``panel.css``, shipped beside this file,
no build step) draws the header, rows, bars and buttons, ticks the clocks, and sends what
the user does back as custom messages.

One change is one message: the whole view of what is on screen (the pinned rows, one page,
the open queued list), bounded by the page size. Redraws the orchestrator asks for are
coalesced (at most one every ``MIN_DRAW_INTERVAL`` seconds, in a thread), so 40 submits in a
cell cost a few draws, not 40; after a cell the saved snapshot is brought up to date only
if something changed (the kernel's main thread pays nothing for a ``1 + 1``). Every action
is also a Python method (``submit``, ``cancel``, ``decide``, ``set_filter``,
``next_page``, ...) for tests and scripts; an action that fails shows its error in the
panel instead of raising.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..core.errors import describe_error
from ..core.mission import MISSION_STATUSES, Mission
from ..core.progress import STATUS_STYLES, truncate
from .coalescer import Coalescer
from .panel_state import SORT_ORDERS, PanelState
from .panel_timeline import TimelineView
from .stall_clock import MIN_REFRESH_INTERVAL, StallClock
from .static import decision_html, details_html, snapshot_html

_HERE = Path(__file__).resolve().parent
#: Fewest seconds between two coalesced redraws.
MIN_DRAW_INTERVAL = 0.1
#: Most missions whose details can be open at once (each is part of every message).
DETAILS_OPEN_MAX = 5
#: Decisions a person can take for a waiting mission.
DECISIONS = ("retry", "skip", "abort")
#: What the panel's body shows: the rows, or the timeline of the same missions.
VIEW_MODES = ("list", "timeline")


def palette_css() -> str:
    """The status colours as CSS variables, from the one palette (light, and dark themes)."""
    light = "".join(f"--mw-{s}:{style.colour};" for s, style in STATUS_STYLES.items())
    dark = "".join(f"--mw-{s}:{style.dark};" for s, style in STATUS_STYLES.items())
    dark_scopes = ", ".join(
        f"{scope} .mw-panel"
        for scope in ('body[data-jp-theme-light="false"]', ".dark", '[data-theme="dark"]')
    )
    return f".mw-panel{{{light}}}\n{dark_scopes}{{{dark}--mw-dark:1;}}\n"


def goal_name(goal: str) -> str:
    """A goal as messages name it: quoted, cut to one short line."""
    return f"\u201c{truncate(goal, 60)}\u201d"


def action(method: Callable[..., Any]) -> Callable[..., Any]:
    """A user action: its error goes to the panel's message line; the panel redraws after."""

    @functools.wraps(method)
    def run(self: MissionPanel, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            self.show_error(describe_error(exc))
            return None
        finally:
            self.redraw()

    return run


class MissionPanel(anywidget.AnyWidget):
    """The live panel of an orchestrator's missions, drawn in the browser.

    Rows that need attention (waiting for a person, failed, stalled, hung) are pinned above
    the others and never paged away; queued missions fold into one line that opens; the
    rest are ``page_size`` a page, newest first by default (``sort="oldest"`` /
    ``"status"``). The panel draws the health flags the orchestrator raises on its own
    fixed schedule; ``no_progress_secs`` and ``heartbeat_timeout_secs``, when given, set
    the orchestrator's thresholds (Poll also reconciles with them and
    ``stall_threshold_secs``; ``reconcile_every_secs`` is no longer used);
    ``refresh_interval`` is how often the static snapshot a saved notebook keeps is
    rewritten while missions run; ``log_lines`` the log tail in the details.
    """

    _esm = _HERE / "panel.js"
    _css = palette_css() + (_HERE / "panel.css").read_text(encoding="utf-8")
    #: Everything the browser draws, as one JSON object (one message per change).
    view = traitlets.Dict().tag(sync=True)
    #: Bumped when the browser says hello: a view that sees it knows the kernel listens
    #: (a notebook reopened without its kernel draws the saved view read-only).
    kernel_seen = traitlets.Int(0).tag(sync=True)
    #: "list" (the rows) or "timeline" (the picture ``orch.timeline()`` draws); the
    #: browser's tabs set it too.
    view_mode = traitlets.Enum(VIEW_MODES, default_value="list").tag(sync=True)
    #: The Timeline view's HTML (``Timeline.to_html()``), empty while the view is closed;
    #: its page and number of pages.
    timeline_html = traitlets.Unicode("").tag(sync=True)
    timeline_page = traitlets.Int(1).tag(sync=True)
    timeline_pages = traitlets.Int(1).tag(sync=True)

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
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise ValueError(f"page_size must be an int in 1..200, got {page_size!r}")
        if not 1 <= page_size <= 200:
            raise ValueError(f"page_size must be an int in 1..200, got {page_size!r}")
        if refresh_interval < MIN_REFRESH_INTERVAL:
            raise ValueError(
                f"refresh_interval must be >= {MIN_REFRESH_INTERVAL} s, got {refresh_interval!r}"
            )
        sorts = [key for key, _ in SORT_ORDERS]
        if sort not in sorts:
            raise ValueError(f"sort must be one of {sorts}, got {sort!r}")
        super().__init__()
        self.orchestrator = orchestrator
        self.page_size = page_size
        self.stall_threshold_secs = stall_threshold_secs
        self.no_progress_secs = no_progress_secs
        self.heartbeat_timeout_secs = heartbeat_timeout_secs
        self.reconcile_every_secs = reconcile_every_secs  # kept for old calls: unused
        # The orchestrator checks health on its own schedule; thresholds given here are its.
        if no_progress_secs is not None:
            orchestrator.no_progress_secs = float(no_progress_secs)
        if heartbeat_timeout_secs is not None:
            orchestrator.heartbeat_timeout_secs = float(heartbeat_timeout_secs)
        self.log_lines = log_lines
        self.refresh_interval = refresh_interval
        self.auto_refresh = auto_refresh
        self.closed = False
        self.snapshot_class = f"mission-widgets-static-{uuid.uuid4().hex[:12]}"
        self.screen = PanelState(orchestrator, page_size, sort)
        self.message: dict[str, Any] = {"kind": "", "text": "", "seq": 0}
        self.details_open: list[str] = []
        self.explanations: dict[str, str] = {}
        # Held while the view is computed (PanelState.build is not reentrant); the send
        # lock is taken before it is let go, so views reach the browser in the order they
        # were computed while the next compute (or a cell's snapshot) need not wait for
        # a send.
        self._draw_lock = threading.RLock()
        self._send_lock = threading.RLock()
        self._sent: dict[str, Any] = {}
        # Bumped by every change (the orchestrator's, through request_redraw; the panel's
        # own, through redraw): a cell that changed nothing leaves the snapshot alone.
        # (next() on a count is atomic: changes come from several threads.)
        self._changes = itertools.count(1)
        self._version = 0
        # The last computed view: (version read before computing it, monotonic time, view).
        self._last_view: tuple[int, float, dict[str, Any]] | None = None
        self._display_id: str | None = None
        self._snapshot_sent = ("", 0.0)
        # The displayed snapshot is of this version's view, settled (nothing in flight)
        # or not, as of this monotonic time.
        self._snapshot_of = (-1, False, 0.0)
        self._post_run_cell: Callable[..., None] | None = None
        self._coalescer = Coalescer(self._draw, MIN_DRAW_INTERVAL)
        self.timeline_view = TimelineView(orchestrator, self._publish_timeline, self.show_error)
        self.on_msg(self._on_browser_message)
        self._refresher = StallClock.of(orchestrator)
        # Listen before the first draw: a change reported in between (the last one before
        # missions go quiet) would otherwise leave the panel stale for good.
        self._refresher.panels.add(self)
        self.redraw()
        self._refresher.wake()

    # -- what the browser draws -------------------------------------------------------------

    def compute(self) -> dict[str, Any]:
        """The view as it is now (what :meth:`redraw` sends when it changed)."""
        view = self.screen.build(time.time())
        view["message"] = dict(self.message)
        view["details"] = {
            mission_id: self.details_html(mission_id)
            for mission_id in self.details_open
            if mission_id in self.orchestrator.missions
        }
        view["questions"] = {
            row["id"]: self.decision_html(row["id"], row["waiting_on"])
            for row in view["pinned"]
            if row["waiting_on"]
        }
        view["explanations"] = {
            k: v for k, v in self.explanations.items() if k in view["questions"]
        }
        view["snapshot_class"] = self.snapshot_class
        view["sorts"] = [list(pair) for pair in SORT_ORDERS]
        view["glyphs"] = {status: style.glyph for status, style in STATUS_STYLES.items()}
        return view

    def redraw(self, force: bool = False) -> bool:
        """Bring the browser up to date now; True if a message was sent."""
        if self.closed:
            return False
        self._version = next(self._changes)  # an action or a caller changed what is shown
        return self._draw(force)

    def _draw(self, force: bool = False) -> bool:
        """Compute the view and send it if it changed (the coalescer's draw)."""
        if self.closed:
            return False
        self._draw_lock.acquire()
        try:
            version, view = self._compute_now()
            self._send_lock.acquire()
        finally:
            self._draw_lock.release()
        try:
            kept = {k: v for k, v in view.items() if k != "now"}
            sent = force or kept != self._sent
            if sent:
                self._sent = kept
                self.view = view
        finally:
            self._send_lock.release()
        self._refresh_snapshot(view, version)
        return sent

    def _compute_now(self) -> tuple[int, dict[str, Any]]:
        """compute(), remembered with the change version it shows (under ``_draw_lock``)."""
        version = self._version  # read first: a change while computing makes it stale
        view = self.compute()
        self._last_view = (version, time.monotonic(), view)
        return version, view

    def _current_view(self) -> tuple[int, dict[str, Any]]:
        """A view of the present state: the last computed one while no change came since
        and its clocks are younger than ``refresh_interval``, else a new one (waiting at
        most for a compute in progress, whose view it then reuses)."""

        def fresh() -> tuple[int, dict[str, Any]] | None:
            last = self._last_view
            if last is None or last[0] != self._version:
                return None
            if time.monotonic() - last[1] >= self.refresh_interval:
                return None
            return last[0], last[2]

        current = fresh()
        if current is not None:
            return current
        with self._draw_lock:
            return fresh() or self._compute_now()

    def request_redraw(self) -> None:
        """Redraw soon (coalesced): what the orchestrator's changes call."""
        if not self.closed:
            self._version = next(self._changes)
            self._coalescer.request()
            self.timeline_view.request()  # nothing while the Timeline view is closed

    # -- the Timeline view ----------------------------------------------------------------

    def show_timeline(self, open: bool = True) -> None:
        """Show the Timeline view (the picture of ``orch.timeline()``, kept current while
        missions run) instead of the rows, or go back to the rows."""
        self.view_mode = "timeline" if open else "list"

    @traitlets.observe("view_mode")
    def _view_mode_changed(self, change: Any) -> None:
        if self.closed:
            return
        try:
            self.timeline_view.show(change["new"] == "timeline")
        except Exception as exc:  # the store cannot be read now: the panel says so
            self.show_error(f"timeline: {describe_error(exc)}")
            self.redraw()

    def _publish_timeline(self, text: str, page: int, pages: int) -> None:
        with self.hold_sync():  # one message
            self.timeline_html = text
            self.timeline_page = page
            self.timeline_pages = pages

    @action
    def set_timeline_page(self, page: int) -> None:
        """Show the ``page``-th page (1-based) of the Timeline view's missions."""
        self.timeline_view.set_page(page)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every row on screen: pinned first, then the page, then the open queued list."""
        view = self.view
        return [*view["pinned"], *view["rows"], *view["queued"]["rows"]]

    def row(self, mission_id: str) -> dict[str, Any]:
        for row in self.rows:
            if row["id"] == mission_id:
                return row
        raise KeyError(f"mission {mission_id} is not on screen")

    @property
    def header(self) -> dict[str, Any]:
        header: dict[str, Any] = self.view["header"]
        return header

    def show_error(self, text: str) -> None:
        self._say("error", text)

    def show_info(self, text: str) -> None:
        self._say("info", text)

    def _say(self, kind: str, text: str) -> None:
        self.message = {"kind": kind, "text": text, "seq": self.message["seq"] + 1}
        self._version = next(self._changes)

    def _goal(self, mission_id: str) -> str:
        try:
            return goal_name(self.orchestrator.get(mission_id).goal)
        except KeyError:
            return mission_id

    # -- details --------------------------------------------------------------------------

    def details_html(self, mission_id: str) -> str:
        mission = self.orchestrator.get(mission_id)
        return details_html(
            list(mission.steps or []),
            self.screen.views.get(mission_id),
            self.orchestrator.log_tail(mission_id, self.log_lines),
        )

    def decision_html(self, mission_id: str, step_id: str) -> str:
        mission = self.orchestrator.get(mission_id)
        for step in mission.steps or []:
            if step.id == step_id:
                return decision_html(step)
        return f"Waiting for your decision at step {step_id}"

    # -- actions (also what the browser's messages call) ------------------------------------

    def reconcile(self) -> list[str]:
        result: list[str] = self.orchestrator.reconcile(
            self.stall_threshold_secs,
            heartbeat_timeout_secs=self.heartbeat_timeout_secs,
            no_progress_secs=self.no_progress_secs,
        )
        return result

    @action
    def submit(self, goal: str) -> Any:
        """Run ``goal`` as a new mission now; returns its handle (None when refused)."""
        if self.orchestrator.global_model is None:
            raise ValueError("Submit needs a model: create the orchestrator with model=...")
        goal = str(goal or "").strip()
        if not goal:
            self._say("hint", "Type a goal in the box first, then press Enter or Submit.")
            return None
        handle = self.orchestrator.run_async(Mission(goal))
        self.screen.filter, self.screen.page = "all", 0  # show where it went
        self.show_info(f"started {goal_name(goal)}")
        self._refresher.wake()
        return handle

    @action
    def run_queued(self) -> list[Mission]:
        started: list[Mission] = self.orchestrator.start_queued()
        self.show_info(f"started {len(started)} queued mission(s)")
        self._refresher.wake()
        return started

    @action
    def poll(self) -> None:
        result = self.orchestrator.poll_async()
        flagged = self.reconcile()
        note = f"; flagged: {', '.join(self._goal(i) for i in flagged)}" if flagged else ""
        self.show_info(
            f"polled: {len(result.completed)} finished, {result.still_running} running{note}"
        )

    @action
    def clear_finished(self) -> None:
        cleared = self.orchestrator.clear_finished()
        self.show_info(f"cleared {len(cleared)} finished mission(s)")

    @action
    def cancel(self, mission_id: str) -> None:
        goal = self._goal(mission_id)
        with self._refresher.busy:
            cancelled = self.orchestrator.cancel(mission_id)
        self.show_info(f"cancelled {goal}" if cancelled else f"{goal} had already finished")

    @action
    def decide(self, mission_id: str, decision: str) -> None:
        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {list(DECISIONS)}, got {decision!r}")
        self.orchestrator.decide(mission_id, decision)
        self.show_info(f"{decision}: sent to {self._goal(mission_id)}")

    @action
    def explain(self, mission_id: str) -> str:
        text: str = self.orchestrator.explain(mission_id)
        self.explanations[mission_id] = text
        return text

    @action
    def set_filter(self, status: str) -> None:
        if status != "all" and status not in MISSION_STATUSES:
            raise ValueError(f"filter must be 'all' or one of {list(MISSION_STATUSES)}")
        self.screen.filter, self.screen.page = status, 0

    @action
    def set_sort(self, sort: str) -> None:
        sorts = [key for key, _ in SORT_ORDERS]
        if sort not in sorts:
            raise ValueError(f"sort must be one of {sorts}, got {sort!r}")
        self.screen.sort, self.screen.page = sort, 0

    @action
    def set_page(self, page: int) -> None:
        self.screen.page = int(page)

    def next_page(self) -> None:
        self.set_page(self.screen.page + 1)

    def prev_page(self) -> None:
        self.set_page(self.screen.page - 1)

    @action
    def show_queued(self, open: bool = True) -> None:
        self.screen.queued_open = bool(open)

    @action
    def show_details(self, mission_id: str, open: bool = True) -> None:
        if mission_id in self.details_open:
            self.details_open.remove(mission_id)
        if open:
            self.orchestrator.get(mission_id)  # an unknown id is refused by name
            self.details_open = [*self.details_open, mission_id][-DETAILS_OPEN_MAX:]

    @action
    def set_max_concurrent(self, value: Any) -> None:
        """The "at once" box: a whole number of at least 1, else refused (and said so)."""
        try:
            number = int(str(value).strip())
        except ValueError:
            number = None
        if number is None or number < 1 or str(number) != str(value).strip():
            raise ValueError(f"'at once' must be a whole number of at least 1, got {value!r}")
        if self.orchestrator.max_concurrent != number:
            self.orchestrator.max_concurrent = number
            self.orchestrator.poll_async()  # a bigger window starts queued missions now
        self.show_info(f"at most {number} at once")

    def _on_browser_message(self, widget: Any, content: Any, buffers: Any) -> None:
        """A click or an entry in the browser: ``{"action": name, ...arguments}``."""
        if not isinstance(content, dict):
            return
        name = content.get("action")
        if name == "hello":
            self.kernel_seen += 1
            return
        handlers: dict[str, Callable[[], Any]] = {
            "submit": lambda: self.submit(content.get("goal", "")),
            "run_queued": self.run_queued,
            "poll": self.poll,
            "clear_finished": self.clear_finished,
            "cancel": lambda: self.cancel(str(content.get("id"))),
            "decide": lambda: self.decide(str(content.get("id")), str(content.get("decision"))),
            "explain": lambda: self.explain(str(content.get("id"))),
            "filter": lambda: self.set_filter(str(content.get("status"))),
            "sort": lambda: self.set_sort(str(content.get("sort"))),
            "page": lambda: self.set_page(int(content.get("page", 0))),
            "queued": lambda: self.show_queued(bool(content.get("open"))),
            "details": lambda: self.show_details(str(content.get("id")), bool(content.get("open"))),
            "max_concurrent": lambda: self.set_max_concurrent(content.get("value")),
            "timeline_page": lambda: self.set_timeline_page(content.get("page")),
        }
        handler = handlers.get(str(name))
        if handler is None:
            self.show_error(f"unknown panel action {name!r}")
            self.redraw()
            return
        handler()

    # -- saved notebooks ------------------------------------------------------------------

    def snapshot_html(self) -> str:
        """The panel as static HTML: totals, every mission that needs attention, the first
        page of the others (what nbconvert, GitHub and a kernel-less notebook show)."""
        _, view = self._current_view()
        return snapshot_html(view, hide_class=self.snapshot_class)

    def _text_summary(self) -> str:
        """What a viewer with neither widgets nor HTML shows (no local paths)."""
        header = self.view.get("header") or {}
        return f"Missions: {header.get('text', '')}"

    def _refresh_snapshot(self, view: dict[str, Any], version: int, force: bool = False) -> None:
        """Rewrite the displayed snapshot (through its display id), at most every
        ``refresh_interval`` seconds while missions run, at once when they have all ended."""
        if self._display_id is None:
            return
        sent, at = self._snapshot_sent
        now = time.monotonic()
        header = view["header"]
        settled = header["ended"] == header["total"]
        if not (force or settled or now - at >= self.refresh_interval):
            return
        text = snapshot_html(view, hide_class=self.snapshot_class)
        if text != sent:
            from IPython.display import update_display

            update_display(self._snapshot_bundle(text), raw=True, display_id=self._display_id)
            self._snapshot_sent = (text, now)
        if version >= self._snapshot_of[0]:
            self._snapshot_of = (version, settled, now)

    def _snapshot_bundle(self, text: str) -> dict[str, str]:
        return {"text/html": text, "text/plain": self._text_summary()}

    def _after_cell(self, *args: Any) -> None:
        """After every cell: the saved snapshot shows the state the cell left (its clocks
        at most ``refresh_interval`` behind while missions run). A cell that changed
        nothing costs nothing: this runs on the kernel's main thread after each cell."""
        if self.closed or self._display_id is None:
            return
        version, settled, at = self._snapshot_of
        if version == self._version and (settled or time.monotonic() - at < self.refresh_interval):
            return
        version, view = self._current_view()
        self._refresh_snapshot(view, version, force=True)

    def _widget_bundle(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        bundle = anywidget.AnyWidget._repr_mimebundle_(self, **kwargs)
        if isinstance(bundle, tuple):
            data, metadata = bundle
        else:
            data, metadata = bundle or {}, {}
        return dict(data), dict(metadata)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget and, in the same bundle, its snapshot (for viewers without widgets)."""
        data, metadata = self._widget_bundle(**kwargs)
        data["text/html"] = self.snapshot_html()
        data["text/plain"] = self._text_summary()
        return data, metadata

    def _ipython_display_(self, **kwargs: Any) -> None:
        """Two outputs: the live widget, and a static snapshot kept current through a
        display id (what nbconvert, GitHub and a kernel-less notebook show; hidden where
        the widget renders, and it hides a widget output that cannot render)."""
        from IPython import get_ipython
        from IPython.display import display

        data, metadata = self._widget_bundle(**kwargs)
        # Only the widget: a text/plain here would be what a viewer without the widget
        # shows above the snapshot.
        widget = {k: v for k, v in data.items() if k == "application/vnd.jupyter.widget-view+json"}
        display(widget, metadata=metadata, raw=True)
        self._display_id = self._display_id or f"mission-panel-{uuid.uuid4().hex}"
        version, view = self._current_view()
        text = snapshot_html(view, hide_class=self.snapshot_class)
        display(self._snapshot_bundle(text), raw=True, display_id=self._display_id)
        now = time.monotonic()
        self._snapshot_sent = (text, now)
        header = view["header"]
        self._snapshot_of = (version, header["ended"] == header["total"], now)
        shell = get_ipython()
        if shell is not None and self._post_run_cell is None:
            self._post_run_cell = _weak_method(self._after_cell)
            shell.events.register("post_run_cell", self._post_run_cell)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def refreshing(self) -> bool:
        """Whether the panel's stall clock is running (while missions are in flight)."""
        return self._refresher.running

    def close(self) -> None:
        """Stop listening and close the widget."""
        if self.__dict__.get("closed", True):  # closed, or __init__ never finished
            super().close()
            return
        self.closed = True
        self._coalescer.stop()
        self.timeline_view.stop()
        self._refresher.panels.discard(self)
        self._refresher.wake()
        if self._post_run_cell is not None:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None:
                shell.events.unregister("post_run_cell", self._post_run_cell)
        super().close()


def _weak_method(method: Callable[..., None]) -> Callable[..., None]:
    """A callback that calls ``method`` while its object lives (an IPython event hook must
    not keep a closed panel alive)."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args)

    return call
