"""One mission row of the panel: a single line (status, goal, bar, steps, times, what went
wrong, Cancel, Details), a decision box while a person is asked, and details that fold open.

Rows only draw :class:`~mission_widgets.core.progress.MissionView` values; what to ask the
orchestrator (cancel, decide, explain, details) goes through the :class:`RowActions` the
panel passes in.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any, Protocol

import ipywidgets as W

from ..core.progress import MissionView, format_duration, status_style, truncate

#: Longest goal kept in the row's text (the full goal is the tooltip; CSS cuts it further).
GOAL_CHARS = 120
#: Decisions a person can take for a waiting mission, as (action, button label, icon).
DECISIONS = (("retry", "Retry", "repeat"), ("skip", "Skip", "forward"), ("abort", "Abort", "stop"))

# One line at any width: text cells never wrap, they are cut with an ellipsis.
_ONE_LINE = "display:block;white-space:nowrap;overflow:hidden;text-overflow:ellipsis"


class RowActions(Protocol):
    """What a row asks of its panel."""

    def cancel(self, mission_id: str, button: W.Button) -> None: ...
    def decide(self, mission_id: str, action: str, button: W.Button) -> None: ...
    def explain(self, mission_id: str, button: W.Button) -> None: ...
    def details_html(self, mission_id: str) -> str: ...
    def decision_html(self, mission_id: str, step_id: str) -> str: ...


def fixed(width: str) -> W.Layout:
    """A layout of exactly ``width`` that neither grows nor shrinks (so a saved widget state
    renders the same without the kernel: buttons are not cut to "Can...")."""
    return W.Layout(width=width, min_width=width, flex="0 0 auto", overflow="hidden")


def update(widget: W.Widget, **traits: Any) -> bool:
    """Set the traits that changed, in one message (``hold_sync``); True if any did."""
    changed = {name: value for name, value in traits.items() if getattr(widget, name) != value}
    if changed:
        with widget.hold_sync():
            for name, value in changed.items():
                setattr(widget, name, value)
    return bool(changed)


def status_html(status: str) -> str:
    """The status as its symbol and word, in its colour (never colour alone)."""
    style = status_style(status)
    return (
        f'<span class="mission-widgets-status mission-widgets-{html.escape(status)}" '
        f'style="color:{style.colour};font-weight:bold;{_ONE_LINE}">'
        f"{style.glyph} {html.escape(status)}</span>"
    )


def note_html(view: MissionView) -> str:
    """What the row says inline: the stall badge, the waiting step, the error's first line."""
    parts = []
    if view.stall_badge:  # a health flag: the mission still runs
        parts.append(
            '<span class="mission-widgets-stall" style="background:{c};color:white;'
            'padding:0 6px;border-radius:8px">{g} {t}</span>'.format(
                c=status_style("stalled").colour,
                g=status_style("stalled").glyph,
                t=html.escape(view.stall_badge.replace("_", " ")),
            )
        )
    if view.waiting_on:
        parts.append(
            '<span class="mission-widgets-waiting"><b>waiting for you</b> at step '
            f"{html.escape(view.waiting_on)}</span>"
        )
    if view.error_line and view.error_line != view.stall_badge:
        parts.append(
            f'<span class="mission-widgets-error" style="color:{view.style.colour}">'
            f"{html.escape(view.error_line)}</span>"
        )
    title = html.escape(" | ".join(filter(None, [view.stall_badge, view.last_error])))
    return f'<span title="{title}" style="{_ONE_LINE}">{" ".join(parts)}</span>'


class MissionRow(W.VBox):
    """A reusable row: the panel binds it to whichever mission is on that line of the page."""

    def __init__(self, actions: RowActions) -> None:
        self.mission_id: str | None = None
        self._actions = actions
        self._last: tuple[MissionView, bool] | None = None
        self.status = W.HTML(layout=fixed("104px"))
        self.goal = W.HTML(layout=W.Layout(flex="1 1 0", min_width="80px", overflow="hidden"))
        self.bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, layout=fixed("150px"))
        self.steps = W.Label(layout=fixed("64px"))
        self.times = W.Label(layout=fixed("118px"))
        self.note = W.HTML(layout=W.Layout(flex="1 1 0", min_width="0", overflow="hidden"))
        self.cancel_button = W.Button(
            description="Cancel", tooltip="Stop this mission", layout=fixed("76px")
        )
        self.details_toggle = W.ToggleButton(
            description="Details", value=False, tooltip="Steps, errors, log", layout=fixed("76px")
        )
        # Built on first need: most rows never ask a person, and widgets are what a page costs.
        self.decision_box: W.VBox | None = None
        self.decision_buttons: dict[str, W.Button] = {}
        self.detail = W.HTML(layout=W.Layout(display="none", margin="0 0 6px 104px"))
        self.cancel_button.on_click(self._cancel_clicked)
        self.details_toggle.observe(self._details_toggled, names="value")
        self.line = W.HBox(
            [
                self.status,
                self.goal,
                self.bar,
                self.steps,
                self.times,
                self.note,
                self.cancel_button,
                self.details_toggle,
            ],
            layout=W.Layout(align_items="center", width="100%", flex_flow="row nowrap"),
        )
        super().__init__([self.line, self.detail], layout=W.Layout(width="100%"))
        self.add_class("mission-widgets-row")

    # -- drawing ----------------------------------------------------------------------------

    def bind(self, view: MissionView, cancellable: bool) -> bool:
        """Show ``view``; returns whether anything was redrawn."""
        if self.mission_id != view.mission_id:
            self.mission_id = view.mission_id
            self._last = None
            self.details_toggle.value = False
            if self.decision_box is not None:
                update(self.explanation, value="")
        if (view, cancellable) == self._last:
            return False
        self._draw(view, cancellable)
        self._last = (view, cancellable)
        return True

    def forget(self) -> None:
        """Drop the memory of what was drawn: the next bind redraws everything."""
        self._last = None

    def _draw(self, view: MissionView, cancellable: bool) -> None:
        goal = html.escape(truncate(view.goal, GOAL_CHARS))
        update(
            self.goal,
            value=f'<span title="{html.escape(view.goal)}" style="{_ONE_LINE}">{goal}</span>',
        )
        update(self.status, value=status_html(view.status))
        update(self.bar, value=view.progress, bar_style=view.bar_style)
        update(self.bar.style, bar_color=view.style.colour)
        update(self.steps, value=f"{view.n_done}/{view.n_steps} steps" if view.n_steps else "")
        eta = f" · ETA {format_duration(view.eta)}" if view.eta is not None else ""
        update(self.times, value=f"{format_duration(view.elapsed)}{eta}")
        update(self.note, value=note_html(view))
        # Hidden, not removed: the columns of every row stay aligned.
        update(self.cancel_button.layout, visibility="visible" if cancellable else "hidden")
        update(self.cancel_button, disabled=not cancellable)
        if view.waiting_on and self.mission_id is not None:
            box = self._decision_box()
            decision = self._actions.decision_html(self.mission_id, view.waiting_on)
            update(self.decision, value=decision)
            update(box.layout, display="")
        elif self.decision_box is not None:
            update(self.decision_box.layout, display="none")

    def _decision_box(self) -> W.VBox:
        """The step, its errors and Explain / Retry / Skip / Abort (made on first need)."""
        if self.decision_box is None:
            self.decision = W.HTML()
            self.explanation = W.HTML()
            self.explain_button = W.Button(
                description="Explain", icon="question", button_style="info", layout=fixed("92px")
            )
            self.explain_button.on_click(self._explain_clicked)
            for action, label, icon in DECISIONS:
                button = W.Button(description=label, icon=icon, layout=fixed("84px"))
                button.on_click(lambda b, action=action: self._decide_clicked(action, b))
                self.decision_buttons[action] = button
            self.decision_box = W.VBox(
                [
                    self.decision,
                    W.HBox([self.explain_button, *self.decision_buttons.values()]),
                    self.explanation,
                ],
                layout=W.Layout(margin="2px 0 6px 104px"),
            )
            self.decision_box.add_class("mission-widgets-decision")
            self.children = (self.line, self.decision_box, self.detail)
        return self.decision_box
        if self.details_toggle.value:
            self._fill_details()

    def show_explanation(self, text: str) -> None:
        self._decision_box()
        colour = status_style("running").colour
        update(
            self.explanation,
            value='<div class="mission-widgets-explanation" style="white-space:pre-wrap;'
            f'border-left:3px solid {colour};padding-left:6px">{html.escape(text)}</div>',
        )

    # -- interaction ------------------------------------------------------------------------

    def _cancel_clicked(self, button: W.Button) -> None:
        if self.mission_id is not None:
            self._actions.cancel(self.mission_id, button)

    def _decide_clicked(self, action: str, button: W.Button) -> None:
        if self.mission_id is not None:
            self._actions.decide(self.mission_id, action, button)

    def _explain_clicked(self, button: W.Button) -> None:
        if self.mission_id is not None:
            self._actions.explain(self.mission_id, button)

    def _details_toggled(self, change: Mapping[str, Any]) -> None:
        if change["new"]:
            self._fill_details()
        update(self.detail.layout, display="" if change["new"] else "none")

    def _fill_details(self) -> None:
        if self.mission_id is not None:
            update(self.detail, value=self._actions.details_html(self.mission_id))
