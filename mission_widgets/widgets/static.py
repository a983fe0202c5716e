"""Static HTML of the panel's state, for saved notebooks and viewers without a widget manager."""

from __future__ import annotations

import html
from collections.abc import Iterable

from ..core.progress import MissionView, format_counts, format_duration

_COLOURS = {"info": "#2196f3", "success": "#4caf50", "danger": "#f44336", "warning": "#ff9800"}


def static_table(views: Iterable[MissionView], counts: dict[str, int], total: int) -> str:
    """An HTML table of missions (at most the first page) with text progress bars."""
    header = format_counts(counts)
    rows = []
    for view in views:
        colour = _COLOURS.get(view.bar_style, "#9e9e9e")
        pct = round(100 * view.progress)
        bar = (
            f'<div style="background:#eee;width:120px;height:10px">'
            f'<div style="background:{colour};width:{pct}%;height:10px"></div></div>'
        )
        note = view.stall_reason or view.last_error or ""
        rows.append(
            "<tr>"
            f"<td>{html.escape(view.goal)}</td>"
            f"<td>{bar}</td>"
            f"<td>{view.n_done}/{view.n_steps}</td>"
            f"<td>{html.escape(view.status)}</td>"
            f"<td>{format_duration(view.elapsed)}</td>"
            f"<td>{html.escape(note)}</td>"
            "</tr>"
        )
    body = "".join(rows) or '<tr><td colspan="6">no missions yet</td></tr>'
    return (
        f'<div class="mission-widgets-static"><b>Missions</b> ({total}): {html.escape(header)}'
        "<table><thead><tr><th>goal</th><th>progress</th><th>steps</th><th>status</th>"
        f"<th>elapsed</th><th>note</th></tr></thead><tbody>{body}</tbody></table>"
        "<small>static snapshot; run the notebook to see the live panel</small></div>"
    )
