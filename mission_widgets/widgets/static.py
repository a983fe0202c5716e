"""HTML the panel draws without widgets: the static snapshot a saved notebook keeps (nbconvert,
GitHub, JupyterLab without a kernel), the summary bar by status, and a mission's details.

Pure functions of view-models and step objects; colours and symbols come from the one
palette, :data:`mission_widgets.core.progress.STATUS_STYLES`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.progress import (
    SEVERITY,
    MissionView,
    OverallView,
    format_counts,
    format_duration,
    format_overall,
    status_style,
    truncate,
)
from ..core.values import LargeValue

_CELL = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"
_TABLE = "font-size:12px;border-collapse:collapse"


def bar_html(fraction: float, status: str | None, width: str = "120px") -> str:
    """A progress bar as two divs, in the colour of ``status``."""
    colour = status_style(status or "pending").colour
    pct = round(100 * min(max(fraction, 0.0), 1.0))
    return (
        f'<div style="display:inline-block;background:#e0e0e0;width:{width};height:10px">'
        f'<div style="background:{colour};width:{pct}%;height:10px"></div></div>'
    )


def summary_html(counts: Mapping[str, int]) -> str:
    """One stacked bar with a segment per status (worst first) and a legend: how many
    missions are where, at a glance, however many there are (like dask's per-key bars)."""
    total = sum(counts.values())
    if not total:
        return ""
    order = [status for status in SEVERITY if counts.get(status)]
    segments = "".join(
        f'<div title="{counts[s]} {s}" style="background:{status_style(s).colour};'
        f'width:{100 * counts[s] / total:.3f}%;height:12px"></div>'
        for s in order
    )
    legend = " &nbsp; ".join(
        f'<span style="color:{status_style(s).colour}">{status_style(s).glyph}</span> '
        f"{counts[s]} {s}"
        for s in order
    )
    return (
        '<div class="mission-widgets-summary" style="font-size:12px">'
        f'<div style="display:flex;width:100%;background:#e0e0e0">{segments}</div>'
        f"{legend}</div>"
    )


def snapshot_html(
    views: Iterable[MissionView],
    counts: Mapping[str, int],
    overall: OverallView,
    *,
    hide_class: str = "",
    shown_of: tuple[int, int] | None = None,
) -> str:
    """The panel as static HTML: header, summary and the visible missions' rows.

    ``hide_class`` is an extra class the live panel hides (so the snapshot shows only where
    the widgets do not); ``shown_of`` is (rows shown, rows in the list) when paged.
    """
    rows = []
    for view in views:
        style = view.style
        note = " ".join(html.escape(text) for text in (view.stall_badge, view.error_line) if text)
        rows.append(
            "<tr>"
            f'<td style="{_CELL};color:{style.colour}"><b>{style.glyph} '
            f"{html.escape(view.status)}</b></td>"
            f'<td style="{_CELL}" title="{html.escape(view.goal)}">'
            f"{html.escape(truncate(view.goal, 60))}</td>"
            f'<td style="{_CELL}">{bar_html(view.progress, view.status)}</td>'
            f'<td style="{_CELL}">{view.n_done}/{view.n_steps}</td>'
            f'<td style="{_CELL}">{format_duration(view.elapsed)}</td>'
            f'<td style="{_CELL};color:{style.colour}">{note}</td>'
            "</tr>"
        )
    body = "".join(rows) or f'<tr><td colspan="6" style="{_CELL}">no missions yet</td></tr>'
    more = ""
    if shown_of is not None and shown_of[1] > shown_of[0]:
        more = f"<small>{shown_of[0]} of {shown_of[1]} shown</small><br>"
    head = "".join(
        f'<th style="{_CELL}">{name}</th>'
        for name in ("status", "goal", "progress", "steps", "time", "note")
    )
    return (
        f'<div class="mission-widgets-static {hide_class}">'
        f"<b>Missions</b> {bar_html(overall.fraction, overall.status, '200px')} "
        f"{html.escape(format_overall(overall))} ({html.escape(format_counts(counts))})"
        f"{summary_html(counts) if overall.total > len(rows) else ''}"
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"{more}<small>static snapshot; run the notebook to see the live panel</small></div>"
    )


def steps_table(steps: Iterable[Any]) -> str:
    """An HTML table of a mission's steps: id, description, status, retries."""
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_CELL}">{html.escape(str(value))}</td>'
            for value in (
                step.id,
                truncate(step.description, 60),
                step.status,
                step.retry_count,
            )
        )
        + "</tr>"
        for step in steps
    )
    if not rows:
        return "<i>no steps yet (planning)</i>"
    head = "".join(
        f'<th style="{_CELL}">{name}</th>' for name in ("step", "description", "status", "retries")
    )
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def error_history_html(steps: Iterable[Any], limit: int = 3) -> str:
    """Each step's failed attempts (the last ``limit``): a retry that then worked is shown as
    recovered, in grey; the errors of a step that is still failing in red."""
    items = []
    for step in steps:
        history = list(getattr(step, "error_history", None) or [])[-limit:]
        recovered = step.status == "done"
        colour = status_style("pending" if recovered else "failed").colour
        for entry in history:
            label = "recovered" if recovered else "error"
            items.append(
                f'<li style="color:{colour}" class="mission-widgets-{label}">'
                f"step {html.escape(str(step.id))}, attempt {entry.get('attempt', '?')} "
                f"({label}): {html.escape(str(entry.get('error', '')))}</li>"
            )
    if not items:
        return ""
    return f'<b>Errors</b><ul style="margin:0;font-size:12px">{"".join(items)}</ul>'


def details_html(steps: list[Any], view: MissionView | None, log_tail: str) -> str:
    """The folded-open details of a mission: steps, large results (by their summary), error
    history, the error that ended it (never on a succeeded mission) and the log tail."""
    error = ""
    if view is not None and view.error_line and view.last_error:
        colour = view.style.colour
        error = f'<p style="color:{colour}"><b>Last error:</b> {html.escape(view.last_error)}</p>'
    log = html.escape(log_tail) if log_tail else "(no output)"
    return (
        f"{steps_table(steps)}{large_results_html(steps)}{error_history_html(steps)}{error}"
        "<b>Log (tail)</b>"
        f'<pre style="max-height:160px;overflow:auto;font-size:11px">{log}</pre>'
    )


def large_results_html(steps: Iterable[Any]) -> str:
    """The results kept in files of their own (over 1 MiB), by their summary and size:
    never loaded to be shown."""
    items = "".join(
        f"<li>{html.escape(str(step.id))}: {html.escape(value.describe())}</li>"
        for step in steps
        if isinstance(value := getattr(step, "stored_result", lambda: None)(), LargeValue)
    )
    if not items:
        return ""
    return f'<b>Large results</b><ul class="mission-widgets-large" style="{_TABLE}">{items}</ul>'


def decision_html(step: Any, waited: float | None = None) -> str:
    """What a person needs to decide for a waiting mission: the step, its description and
    its last errors."""
    errors = "".join(
        f"<li>attempt {entry.get('attempt', '?')}: {html.escape(str(entry.get('error', '')))}</li>"
        for entry in list(getattr(step, "error_history", None) or [])[-3:]
    )
    since = f" for {format_duration(waited)}" if waited is not None else ""
    return (
        f"<b>Step {html.escape(str(step.id))} is waiting for your decision{since}:</b> "
        f"{html.escape(str(step.description))}"
        f'<ul style="margin:0;font-size:12px;color:{status_style("failed").colour}">{errors}</ul>'
    )
