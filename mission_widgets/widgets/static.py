"""HTML the panel draws without widgets: the static snapshot a saved notebook keeps (nbconvert,
GitHub, JupyterLab without a kernel), the summary bar by status, and a mission's details.

Pure functions of view-models and step objects; colours and symbols come from the one
palette, :data:`mission_widgets.core.progress.STATUS_STYLES`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.progress import MissionView, format_duration, status_style, truncate
from ..core.values import LargeValue

_CELL = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"
_TABLE = "font-size:12px;border-collapse:collapse"
#: The empty part of a bar (and pending, which is not work done yet).
_TRACK = "#e0e0e0"


def bar_html(fraction: float, status: str | None, width: str = "120px") -> str:
    """A progress bar as two divs, in the colour of ``status``."""
    colour = status_style(status or "pending").colour
    pct = round(100 * min(max(fraction, 0.0), 1.0))
    return (
        f'<div style="display:inline-block;background:{_TRACK};width:{width};height:10px">'
        f'<div style="background:{colour};width:{pct}%;height:10px"></div></div>'
    )


def summary_html(segments: Iterable[Sequence[Any]], total: int) -> str:
    """The header's stacked bar (a segment per status, pending light) and its legend."""
    if not total:
        return ""
    parts = []
    legend = []
    for status, n in segments:
        style = status_style(status)
        colour = _TRACK if status == "pending" else style.colour
        parts.append(
            f'<div title="{n} {status}" style="background:{colour};'
            f'width:{100 * n / total:.3f}%;height:12px"></div>'
        )
        legend.append(
            f'<span style="color:{style.colour};white-space:nowrap">'
            f"{style.glyph} {n} {status}</span>"
        )
    return (
        '<div class="mission-widgets-summary" style="font-size:12px">'
        f'<div style="display:flex;width:100%;max-width:600px;background:{_TRACK}">'
        f"{''.join(parts)}</div>{' &nbsp; '.join(legend)}</div>"
    )


def _snapshot_row(row: Mapping[str, Any]) -> str:
    style = status_style(row["status"])
    elapsed = format_duration(row["elapsed"]) if row.get("elapsed") is not None else ""
    note = html.escape(row.get("note") or "")
    return (
        "<tr>"
        f'<td style="{_CELL};white-space:nowrap;color:{style.colour}"><b>{style.glyph} '
        f"{html.escape(row['status'])}</b></td>"
        f'<td style="{_CELL}" dir="auto">{html.escape(row["goal"])}'
        + (f'<br><small style="color:{style.colour}" dir="auto">{note}</small>' if note else "")
        + "</td>"
        f'<td style="{_CELL};white-space:nowrap">{bar_html(row["progress"], row["status"])}</td>'
        f'<td style="{_CELL};white-space:nowrap">{html.escape(row.get("steps") or "")}</td>'
        f'<td style="{_CELL};white-space:nowrap">{elapsed}</td>'
        "</tr>"
    )


def snapshot_html(view: Mapping[str, Any], *, hide_class: str = "") -> str:
    """The panel's view as static HTML: the header line and stacked bar with the totals,
    every pinned row (the missions that need attention), the page of the others and the
    queued count. Nothing of the machine (no paths); columns do not wrap.

    ``hide_class`` is the class the live panel hides; the ``<style>`` here hides, in turn,
    a widget output just above it that could not render (a notebook reopened without its
    kernel or its widget state says "model not found" there).
    """
    header = view["header"]
    queued = view["queued"]
    rows = [*view["pinned"], *view["rows"]]
    body = "".join(_snapshot_row(row) for row in rows)
    if queued["n"]:
        body += f'<tr><td colspan="5" style="{_CELL}">{queued["n"]} queued</td></tr>'
    if not body:
        body = f'<tr><td colspan="5" style="{_CELL}">no missions yet</td></tr>'
    more = []
    if view.get("pinned_more"):
        more.append(f"{view['pinned_more']} more need attention")
    listed, shown = view.get("listed", 0), len(view["rows"])
    if listed > shown:
        more.append(f"{listed - shown} more finished or running not shown")
    head = "".join(
        f'<th style="{_CELL};white-space:nowrap">{name}</th>'
        for name in ("status", "goal", "progress", "steps", "time")
    )
    hide = (
        f"<style>.jp-OutputArea-child:has(+ .jp-OutputArea-child .{hide_class})"
        " .jp-OutputArea-output:not(:has(.mw-panel)){display:none}</style>"
        if hide_class
        else ""
    )
    counts = ", ".join(f"{n} {status}" for status, n in header["segments"]) or "no missions"
    return (
        f'{hide}<div class="mission-widgets-static {hide_class}">'
        f'<b>Missions</b> <span style="white-space:nowrap">{html.escape(header["text"])}</span>'
        f" ({html.escape(counts)})"
        f"{summary_html(header['segments'], header['total'])}"
        f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        f"<small>{html.escape('; '.join(more))}{'; ' if more else ''}"
        "static snapshot; run the notebook to see the live panel</small></div>"
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
                step.status + (" (skipped)" if getattr(step, "skipped", False) else ""),
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
