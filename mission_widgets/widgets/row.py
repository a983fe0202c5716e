"""One mission row of the panel: goal, progress bar, steps, times, stall badge, Cancel, details."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as W

from ..core.progress import MissionView, format_duration

_STATUS_COLOURS = {
    "pending": "#757575",
    "planning": "#1976d2",
    "running": "#1976d2",
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#c62828",
    "stalled": "#ef6c00",
}


class MissionRow(W.VBox):
    """A reusable row: the panel binds it to whichever mission is on that line of the page.

    ``draw(view)`` only touches traits whose value changed, inside ``hold_sync()``.
    """

    def __init__(
        self,
        on_cancel: Callable[[str, W.Button], None],
        on_details: Callable[[str], tuple[str, str]],
    ) -> None:
        self.mission_id: str | None = None
        self._on_cancel = on_cancel
        self._on_details = on_details
        self._last: MissionView | None = None
        # Columns in percent of the row, leaving room for the two buttons (fixed, unshrinkable
        # widths: at 80 px "Cancel" with its icon was cut to "Can...").
        self.goal = W.HTML(layout=W.Layout(width="25%", overflow="hidden"))
        self.bar = W.FloatProgress(
            value=0.0, min=0.0, max=1.0, bar_style="", layout=W.Layout(width="20%")
        )
        self.steps = W.Label(layout=W.Layout(width="9%"))
        self.times = W.Label(layout=W.Layout(width="13%"))
        self.status = W.HTML(layout=W.Layout(width="9%"))
        # The badge gets a line of its own under the bar: inline it squeezed the columns of
        # its row out of line with the others and wrapped its reason over two lines.
        self.stall_badge = W.HTML(layout=W.Layout(display="none", margin="0 0 4px 25%"))
        self.cancel_button = W.Button(
            description="Cancel",
            button_style="danger",
            icon="stop",
            layout=W.Layout(width="96px", flex="0 0 auto"),
        )
        self.details_toggle = W.ToggleButton(
            description="Details", value=False, layout=W.Layout(width="80px", flex="0 0 auto")
        )
        self.detail = W.HTML(layout=W.Layout(display="none"))
        self.cancel_button.on_click(self._cancel_clicked)
        self.details_toggle.observe(self._details_toggled, names="value")
        line = W.HBox(
            [
                self.goal,
                self.bar,
                self.steps,
                self.times,
                self.status,
                self.cancel_button,
                self.details_toggle,
            ],
            layout=W.Layout(align_items="center", width="100%"),
        )
        super().__init__([line, self.stall_badge, self.detail], layout=W.Layout(width="100%"))
        self.add_class("mission-widgets-row")

    # -- drawing ----------------------------------------------------------------------------

    def bind(self, view: MissionView | None) -> bool:
        """Show ``view`` (None hides the row). Returns whether anything was redrawn."""
        if view is None:
            if self.layout.display != "none":
                self.layout.display = "none"
            self.mission_id = None
            self._last = None
            return True
        if self.mission_id != view.mission_id:
            self.mission_id = view.mission_id
            self._last = None
            self.details_toggle.value = False
        if view == self._last:
            return False
        with self.hold_sync():
            self._draw(view)
        self._last = view
        return True

    def forget(self) -> None:
        """Drop the memory of what was drawn: the next bind redraws everything."""
        self._last = None

    def _draw(self, view: MissionView) -> None:
        self.layout.display = ""
        self._set(self.goal, "value", _goal_html(view))
        self._set(self.bar, "value", view.progress)
        self._set(self.bar, "bar_style", view.bar_style)
        self._set(self.steps, "value", f"{view.n_done}/{view.n_steps} steps")
        eta = f" · ETA {format_duration(view.eta)}" if view.eta is not None else ""
        self._set(self.times, "value", f"{format_duration(view.elapsed)}{eta}")
        colour = _STATUS_COLOURS.get(view.status, "#757575")
        self._set(self.status, "value", f'<b style="color:{colour}">{view.status}</b>')
        if view.stall_reason:
            badge = (
                '<span class="mission-widgets-stall" style="background:#ff9800;color:white;'
                'padding:1px 6px;border-radius:8px" title="{t}">&#9888; stalled: {t}</span>'
            ).format(t=html.escape(view.stall_reason))
            self._set(self.stall_badge, "value", badge)
            self._set(self.stall_badge.layout, "display", "")
        else:
            self._set(self.stall_badge.layout, "display", "none")
        self._set(self.cancel_button, "disabled", view.finished)
        if self.details_toggle.value:
            self._fill_details()

    @staticmethod
    def _set(widget, name: str, value) -> None:
        if getattr(widget, name) != value:
            setattr(widget, name, value)

    # -- interaction ------------------------------------------------------------------------

    def _cancel_clicked(self, button: W.Button) -> None:
        if self.mission_id is not None:
            self._on_cancel(self.mission_id, button)

    def _details_toggled(self, change) -> None:
        if change["new"]:
            self._fill_details()
            self.detail.layout.display = ""
        else:
            self.detail.layout.display = "none"

    def _fill_details(self) -> None:
        if self.mission_id is None:
            return
        steps_html, log_tail = self._on_details(self.mission_id)
        last_error = self._last.last_error if self._last else None
        error = (
            f'<p style="color:#c62828"><b>Last error:</b> {html.escape(last_error)}</p>'
            if last_error
            else ""
        )
        log = html.escape(log_tail) if log_tail else "(no output)"
        value = (
            f"{steps_html}{error}<b>Log (tail)</b>"
            f'<pre style="max-height:160px;overflow:auto;font-size:11px">{log}</pre>'
        )
        self._set(self.detail, "value", value)


def _goal_html(view: MissionView) -> str:
    goal = html.escape(view.goal)
    return f'<span title="{html.escape(view.mission_id)}">{goal}</span>'


def steps_table(steps: list[dict]) -> str:
    """An HTML table of a mission's steps (id, status, retries, last error)."""
    if not steps:
        return "<i>no steps yet (planning)</i>"
    # Widget HTML gets no notebook table styles: without padding the columns ran together.
    td = '<td style="padding:1px 12px 1px 0;text-align:left;vertical-align:top">'
    th = '<th style="padding:1px 12px 1px 0;text-align:left">'
    rows = "".join(
        "<tr>"
        + "".join(
            f"{td}{html.escape(str(value))}</td>"
            for value in (s["id"], s["status"], s["retries"], s.get("error") or "")
        )
        + "</tr>"
        for s in steps
    )
    head = "".join(f"{th}{name}</th>" for name in ("step", "status", "retries", "last error"))
    return (
        '<table style="font-size:12px;border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )
