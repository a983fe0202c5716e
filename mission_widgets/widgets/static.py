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


#: Longest preview of a step's result in the details.
RESULT_PREVIEW_CHARS = 300
_PRE = "white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0"


def step_status(step: Any) -> str:
    """A step's status as shown: a skipped step reads ``skipped``, never as a success."""
    status = str(step.status)
    return "skipped" if getattr(step, "skipped", False) or status == "skipped" else status


def result_preview(step: Any) -> str:
    """A bounded preview of a step's result (a large one by its summary, never loaded)."""
    value = step.stored_result() if hasattr(step, "stored_result") else None
    if value is None:
        return ""
    if isinstance(value, LargeValue):
        return value.describe()
    text = value if isinstance(value, str) else repr(value)
    return truncate(text, RESULT_PREVIEW_CHARS)


def steps_table(steps: Iterable[Any]) -> str:
    """An HTML table of a mission's steps: id, description, status, retries, result."""
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_CELL}" class="mw-step-{name}">{html.escape(str(value))}</td>'
            for name, value in (
                ("id", step.id),
                ("description", truncate(step.description, 60)),
                ("status", step_status(step)),
                ("retries", step.retry_count),
                ("result", result_preview(step) if step_status(step) == "done" else ""),
            )
        )
        + "</tr>"
        for step in steps
    )
    if not rows:
        return "<i>no steps yet (planning)</i>"
    head = "".join(
        f'<th style="{_CELL}">{name}</th>'
        for name in ("step", "description", "status", "retries", "result")
    )
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def error_history_html(steps: Iterable[Any], limit: int = 3) -> str:
    """Each step's failed attempts (the last ``limit``), each message once with its line
    breaks: a retry that then worked in grey as recovered, a step still failing in red; an
    explanation (from Explain) as an explanation, not as an attempt. The traceback of the
    last failure of a failing step follows, once."""
    items = []
    traceback = None
    for step in steps:
        history = list(getattr(step, "error_history", None) or [])[-limit:]
        recovered = step.status == "done"
        colour = status_style("pending" if recovered else "failed").colour
        for entry in history:
            text = html.escape(str(entry.get("error", "")))
            if entry.get("error_type") == "analysis":
                items.append(
                    f'<li class="mw-explanation"><b>Explanation</b> for step '
                    f'{html.escape(str(step.id))}<div style="{_PRE}">{text}</div></li>'
                )
                continue
            label = "recovered" if recovered else "error"
            items.append(
                f'<li style="color:{colour}" class="mission-widgets-{label}">'
                f"step {html.escape(str(step.id))}, attempt {entry.get('attempt', '?')} "
                f'({label}):<div style="{_PRE}">{text}</div></li>'
            )
            if not recovered and entry.get("traceback"):
                traceback = entry["traceback"]
    if not items:
        return ""
    trace = (
        f'<details><summary>Traceback</summary><pre class="mw-traceback" style="{_PRE}">'
        f"{html.escape(str(traceback))}</pre></details>"
        if traceback
        else ""
    )
    return f'<b>Errors</b><ul style="margin:0;font-size:12px">{"".join(items)}</ul>{trace}'


def details_html(steps: list[Any], view: MissionView | None, log_tail: str) -> str:
    """The folded-open details of a mission: steps and their results, the mission's
    result, large results (by their summary), error history with the traceback, why it
    ended (when the attempts above do not say it already) and the log tail."""
    errors = error_history_html(steps)
    ended = ""
    if view is not None and view.error_line and view.last_error:
        told = any(
            str(entry.get("error", "")) in view.last_error
            for step in steps
            for entry in getattr(step, "error_history", None) or []
            if entry.get("error")
        )
        if not told:
            colour = view.style.colour
            ended = (
                f'<p style="color:{colour}"><b>Ended:</b></p>'
                f'<div style="{_PRE};color:{colour}">{html.escape(view.last_error)}</div>'
            )
    result = ""
    if view is not None and view.status == "succeeded" and view.result_summary:
        result = f'<p class="mw-result"><b>Result:</b> {html.escape(view.result_summary)}</p>'
    log = html.escape(log_tail) if log_tail else "(no output)"
    return (
        f"{steps_table(steps)}{result}{large_results_html(steps)}{errors}{ended}"
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
