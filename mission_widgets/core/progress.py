"""Progress view-models and their text rendering: pure functions, no I/O.

Like tqdm's ``format_meter``: everything here takes plain values and returns plain values
(strings, numbers, :class:`MissionView`), so the terminal (``mission-widgets demo`` /
``status``) and the ipywidgets panel draw the same numbers, and all of it is unit-tested
without a terminal, a kernel or a store. No ipywidgets, pandas or runtime imports.

The one entry point most callers need is :func:`mission_view`, which turns a mission (a
:class:`~mission_widgets.Mission` or its mirror, a store row, or a ``status()`` record)
into a :class:`MissionView`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from .mission import TERMINAL_STATUSES

#: Statuses after which nothing changes any more.
FINISHED_STATUSES = TERMINAL_STATUSES
#: Statuses in which work is under way (ETA makes sense).
ACTIVE_STATUSES = frozenset({"planning", "running"})


class StatusStyle(NamedTuple):
    """How every display draws one status: the one palette of the package.

    ``colour`` is a CSS colour for light backgrounds (panel, static HTML) and ``dark`` the
    same status on dark backgrounds (the panel in a dark theme); each is at least 4.5:1
    against its background (white, and JupyterLab's dark ``#111111``). ``glyph`` is a
    symbol for HTML, ``mark`` / ``mark_ascii`` one character for text tables, ``bar_style``
    ipywidgets' ``FloatProgress.bar_style`` names and ``ansi`` the SGR code of the terminal
    colour. Every status differs in colour *and* in symbol, so no one has to tell red from
    orange to read the panel.
    """

    colour: str
    glyph: str
    mark: str
    mark_ascii: str
    bar_style: str
    ansi: str
    dark: str = "#bdbdbd"


STATUS_STYLES: dict[str, StatusStyle] = {
    "pending": StatusStyle("#616161", "\u25cb", " ", " ", "", "2", "#bdbdbd"),  # white circle
    "planning": StatusStyle("#1565c0", "\u25b7", ">", ">", "info", "36", "#90caf9"),  # triangle
    "running": StatusStyle("#1565c0", "\u25b6", ">", ">", "info", "36", "#90caf9"),  # triangle
    "waiting": StatusStyle("#00695c", "?", "?", "?", "warning", "36", "#80cbc4"),  # a question
    "succeeded": StatusStyle("#2e7d32", "\u2714", "\u2713", "+", "success", "32", "#81c784"),
    "failed": StatusStyle("#c62828", "\u2716", "\u2717", "x", "danger", "31", "#ef9a9a"),
    "stalled": StatusStyle("#b45309", "\u26a0", "!", "!", "warning", "33", "#ffb74d"),
    "cancelled": StatusStyle("#6a1b9a", "\u2298", "-", "-", "", "35", "#ce93d8"),
}
_UNKNOWN_STYLE = StatusStyle("#616161", "\u00b7", "?", "?", "", "", "#bdbdbd")

#: ``bar_style`` per status (ipywidgets' names); derived from :data:`STATUS_STYLES`.
BAR_STYLES = {status: style.bar_style for status, style in STATUS_STYLES.items()}
#: One-character marks that make failures and stalls stand out in plain text.
STATUS_MARKS = {status: style.mark for status, style in STATUS_STYLES.items()}
STATUS_MARKS_ASCII = {status: style.mark_ascii for status, style in STATUS_STYLES.items()}

#: Statuses from the worst to the best: an overall bar takes the style of the worst present.
SEVERITY = (
    "waiting",
    "failed",
    "stalled",
    "cancelled",
    "running",
    "planning",
    "pending",
    "succeeded",
)


def status_style(status: str) -> StatusStyle:
    """The :class:`StatusStyle` of ``status`` (a neutral one for unknown statuses)."""
    return STATUS_STYLES.get(str(status), _UNKNOWN_STYLE)


def ansi(text: str, status: str) -> str:
    """``text`` in the terminal colour of ``status`` (blank text stays plain)."""
    code = status_style(status).ansi
    return f"\x1b[{code}m{text}\x1b[0m" if code and text.strip() else text


#: How core.mission words the end of a mission at a step: "aborted at step 'x': cause".
_AT_STEP = re.compile(r"^(?P<where>\w+ at step '[^']*'): (?P<cause>.+)$")

_PARTIAL_BLOCKS = " \u258f\u258e\u258d\u258c\u258b\u258a\u2589"  # 0/8 .. 7/8 of a cell
_FULL_BLOCK = "\u2588"


class MissionView(NamedTuple):
    """What a progress display needs to know about one mission, at one moment.

    ``progress`` is 0.0..1.0; ``elapsed`` and ``eta`` are seconds (None when not started /
    not estimable); ``bar_style`` is ``'info' | 'success' | 'danger' | 'warning' | ''``
    (ipywidgets' names); ``finished`` is True for terminal statuses.
    """

    mission_id: str
    goal: str
    status: str
    progress: float
    n_done: int
    n_steps: int
    elapsed: float | None
    eta: float | None
    bar_style: str
    stall_reason: str | None = None
    last_error: str | None = None
    finished: bool = False
    n_failed: int = 0
    waiting_on: str | None = None
    message: str | None = None
    started_at: float | None = None
    heartbeat_at: float | None = None
    result_summary: str | None = None

    @property
    def short_id(self) -> str:
        return short_id(self.mission_id)

    @property
    def style(self) -> StatusStyle:
        return status_style(self.status)

    @property
    def stall_badge(self) -> str | None:
        """The health flag ("no_heartbeat" | "no_progress") of a mission that is still going
        (gone once it recovers or ends: the history keeps it, the row does not)."""
        return self.stall_reason if not self.finished else None

    @property
    def error_line(self) -> str | None:
        """The first line of the error of a failed, stalled or cancelled mission, its cause
        first: ``"aborted at step 'fetch': TimeoutError: ..."`` reads
        ``"TimeoutError: ... (aborted at step 'fetch')"``, so a cut line keeps the cause."""
        if self.status not in ("failed", "stalled", "cancelled"):
            return None
        line = first_line(self.last_error)
        where = _AT_STEP.match(line or "")
        return f"{where['cause']} ({where['where']})" if where else line


# -- small formatters -------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None for None/NaN/NaT/inf/non-numbers; datetimes -> epoch s."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if value != value:  # NaN, NaT
            return None
    except (TypeError, ValueError):  # pandas.NA and friends refuse to be compared
        return None
    if hasattr(value, "timestamp") and not isinstance(value, int | float):
        try:
            value = value.timestamp()
        except (ValueError, TypeError, OverflowError):
            return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def clamp_fraction(fraction: Any) -> float:
    """``fraction`` clamped to 0.0..1.0 (None, NaN and junk count as 0)."""
    number = _finite(fraction)
    if number is None:
        return 0.0
    return min(max(number, 0.0), 1.0)


def format_bar(fraction: float, width: int = 20, *, ascii: bool = False) -> str:
    """A text progress bar exactly ``width`` characters wide.

    Unicode uses eighth blocks for a smooth bar (like tqdm); ``ascii=True`` uses ``#`` and
    ``.``. ``fraction`` is clamped to 0..1.
    """
    width = int(width)
    if width <= 0:
        return ""
    fraction = clamp_fraction(fraction)
    if ascii:
        filled = int(fraction * width + 1e-9)
        return "#" * filled + "." * (width - filled)
    eighths = int(fraction * width * 8 + 1e-9)
    full, partial = divmod(eighths, 8)
    bar = _FULL_BLOCK * full
    if full < width:
        bar += _PARTIAL_BLOCKS[partial] if partial else " "
    return bar + " " * (width - len(bar))


def format_percent(fraction: float) -> str:
    """``'  0%'`` .. ``'100%'`` (4 characters); 100% only when really complete."""
    fraction = clamp_fraction(fraction)
    pct = int(fraction * 100) if fraction < 1.0 else 100
    return f"{pct:3d}%"


def format_duration(seconds: float | None) -> str:
    """A short human duration: ``'-'`` (unknown), ``'0.4s'``, ``'12s'``, ``'3m05s'``,
    ``'2h07m'``, ``'3d04h'``."""
    value = _finite(seconds)
    if value is None:
        return "-"
    value = max(value, 0.0)
    if value < 9.95:
        return f"{value:.1f}s"
    whole = int(value + 0.5)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs:02d}s"
    if whole < 86400:
        hours, rest = divmod(whole, 3600)
        return f"{hours}h{rest // 60:02d}m"
    days, rest = divmod(whole, 86400)
    return f"{days}d{rest // 3600:02d}h"


def estimate_eta(progress: float | None, elapsed: float | None) -> float | None:
    """Seconds left at the average rate so far; None when not started, at 0 or when done."""
    fraction = _finite(progress)
    spent = _finite(elapsed)
    if fraction is None or spent is None or spent < 0 or fraction <= 0.0 or fraction >= 1.0:
        return None
    return spent * (1.0 - fraction) / fraction


def truncate(text: str, width: int, *, ascii: bool = False) -> str:
    """``text`` cut to at most ``width`` characters, ending with an ellipsis when cut."""
    text = " ".join(str(text).split())  # one line: newlines would break a table
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    mark = "..." if ascii else "\u2026"
    if width <= len(mark):
        return text[:width]
    return text[: width - len(mark)] + mark


def first_line(text: str | None) -> str | None:
    """The first non-blank line of ``text`` (None for None or blank text)."""
    for line in str(text or "").splitlines():
        if line.strip():
            return line.strip()
    return None


def short_id(mission_id: str) -> str:
    """The random tail of ``mission_<time>_<random>`` (what tables show and ``cancel`` takes)."""
    text = str(mission_id)
    head, sep, tail = text.rpartition("_")
    return tail if sep and head.startswith("mission") and tail else text


def bar_style(status: str) -> str:
    return BAR_STYLES.get(status, "")


def status_counts(views: Iterable[MissionView]) -> dict[str, int]:
    """Missions by status, in lifecycle order, zeros left out."""
    counts: dict[str, int] = {}
    for view in views:
        counts[view.status] = counts.get(view.status, 0) + 1
    order = list(BAR_STYLES)
    return dict(sorted(counts.items(), key=lambda kv: (_index(order, kv[0]), kv[0])))


def _index(order: list[str], item: str) -> int:
    return order.index(item) if item in order else len(order)


def format_counts(counts: Mapping[str, int]) -> str:
    """``'4 succeeded, 1 failed, 1 running'`` (zeros left out); ``'no missions'`` when empty."""
    parts = [f"{n} {status}" for status, n in counts.items() if n]
    return ", ".join(parts) if parts else "no missions"


def format_rate(rate: float | None) -> str:
    """``'2.5 missions/s'``, or the time per mission when slower than one a second
    (``'12s/mission'``), as tqdm inverts ``it/s`` to ``s/it``; ``''`` when unknown."""
    value = _finite(rate)
    if value is None or value <= 0:
        return ""
    if value >= 1:
        return f"{value:.1f} missions/s"
    return f"{format_duration(1 / value)}/mission"


def page_count(n_items: int, page_size: int) -> int:
    """How many pages ``n_items`` fill (at least one, so an empty list has page 1 of 1)."""
    return max(1, -(-int(n_items) // int(page_size)))


# -- the view-model ---------------------------------------------------------------------------


def _get(source: Any, name: str, default: Any = None) -> Any:
    if isinstance(source, Mapping):
        return source.get(name, default)
    return getattr(source, name, default)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if value != value:  # NaN in a DataFrame record
            return None
    except (TypeError, ValueError):
        return None
    text = str(value)
    return text or None


def _int(value: Any) -> int:
    number = _finite(value)
    return int(number) if number is not None else 0


def _last_step_error(steps: Iterable[Any]) -> str | None:
    latest: tuple[float, str] | None = None
    for step in steps:
        for entry in getattr(step, "error_history", None) or []:
            error = entry.get("error") if isinstance(entry, Mapping) else None
            if not error:
                continue
            stamp = _finite(entry.get("timestamp")) or 0.0
            if latest is None or stamp >= latest[0]:
                latest = (stamp, f"step {getattr(step, 'id', '?')!r}: {error}")
    return latest[1] if latest else None


def _result_summary(mission: Any) -> str | None:
    """A store row's or status() record's ``result_summary``; a Mission's result preview."""
    preview = None if isinstance(mission, Mapping) else getattr(mission, "result_preview", None)
    return _text(preview() if callable(preview) else _get(mission, "result_summary"))


def mission_view(mission: Any, now: float) -> MissionView:
    """The view-model of one mission at time ``now`` (epoch seconds).

    ``mission`` is a :class:`~mission_widgets.Mission` (or an orchestrator's mirror of one),
    a store row (``MissionStore.row()`` / ``rows()``) or a record of
    ``MissionOrchestrator.status()`` (``frame.to_dict("records")``): anything with ``id``,
    ``goal``, ``status``, ``started_at``, ``finished_at`` and either ``steps`` (a Mission)
    or ``n_steps`` / ``n_done`` / ``progress`` (a row).
    """
    status = str(_get(mission, "status") or "pending")
    mission_id = str(_get(mission, "id", None) or _get(mission, "mission_id", "") or "")
    goal = str(_get(mission, "goal", "") or "")

    if isinstance(mission, Mapping):
        n_steps = _int(mission.get("n_steps"))
        n_done = _int(mission.get("n_done"))
        n_failed = _int(mission.get("n_failed"))
        progress = 1.0 if status == "succeeded" else clamp_fraction(mission.get("progress"))
        last_error = _text(mission.get("error"))
    else:
        steps = list(_get(mission, "steps") or [])
        n_steps = len(steps)
        n_done = sum(1 for s in steps if getattr(s, "status", None) == "done")
        n_failed = sum(1 for s in steps if getattr(s, "status", None) == "failed")
        progress = clamp_fraction(_get(mission, "progress", 0.0))
        last_error = _text(_get(mission, "error")) or _last_step_error(steps)

    started = _finite(_get(mission, "started_at"))
    ended = _finite(_get(mission, "finished_at"))
    # Older releases wrote "stalled" with no finish time for a mission waiting for a person
    # or flagged by reconcile(): it had not ended.
    finished = status in FINISHED_STATUSES and not (status == "stalled" and ended is None)
    if status == "succeeded":
        last_error = None  # retries that recovered are history, not the mission's error
    if started is None:
        elapsed = None
    elif finished and ended is not None:
        elapsed = max(ended - started, 0.0)
    else:
        elapsed = max(float(now) - started, 0.0)

    if finished and status in ("failed", "stalled") and n_steps:
        # What a mission that gave up did is the steps it finished: its failed attempts'
        # progress would show "40%" beside "0/5" (a cancelled one keeps its bar where it
        # stopped, as the work in progress was interrupted, not refused).
        progress = min(n_done / n_steps, 1.0)
    if not finished and progress >= 1.0:
        progress = 0.999  # every step reported 100% but the mission has not ended yet
    eta = estimate_eta(progress, elapsed) if status in ACTIVE_STATUSES else None
    stall_reason = _text(_get(mission, "stall_reason"))
    flagged = stall_reason is not None and not finished  # a health flag: still running
    return MissionView(
        mission_id=mission_id,
        goal=goal,
        status=status,
        progress=progress,
        n_done=n_done,
        n_steps=n_steps,
        elapsed=elapsed,
        eta=eta,
        bar_style="warning" if flagged else bar_style(status),
        stall_reason=stall_reason,
        last_error=last_error,
        finished=finished,
        n_failed=n_failed,
        waiting_on=_text(_get(mission, "waiting_on")),
        message=_text(_get(mission, "message")),
        started_at=started,
        heartbeat_at=_finite(_get(mission, "last_heartbeat")),
        result_summary=_result_summary(mission),
    )


# -- text tables ------------------------------------------------------------------------------

Styler = Callable[[str, str], str]
"""``styler(text, status) -> text``: how a caller colours a cell (identity by default);
:func:`ansi` is the terminal's."""


def _plain(text: str, style: str) -> str:
    return text


def format_steps(view: MissionView) -> str:
    return f"{view.n_done}/{view.n_steps}" if view.n_steps else "-"


def status_mark(status: str, *, ascii: bool = False) -> str:
    marks = STATUS_MARKS_ASCII if ascii else STATUS_MARKS
    return marks.get(status, "?")


def table_note(view: MissionView) -> str:
    """What a table says about a mission: why it stalled, failed or was cancelled, or the
    health flag of one still going (nothing for healthy missions, whose retried transient
    errors are not news)."""
    if view.status in ("failed", "stalled", "cancelled") and view.last_error:
        return view.last_error
    if view.waiting_on:
        return f"waiting for a decision at step {view.waiting_on}"
    return view.stall_badge or ""


def format_table(
    views: Iterable[MissionView],
    *,
    width: int = 100,
    bar_width: int = 16,
    ascii: bool = False,
    styler: Styler | None = None,
    header: bool = True,
    notes: bool = True,
) -> list[str]:
    """The status table: a header line and one line per mission, each at most ``width``
    characters wide (before styling), so a terminal redraw never wraps.

    Columns: mark, short id, goal, bar + percent, steps done/total, status, elapsed, ETA.
    With ``notes``, a failed, cancelled or stalled mission also shows why (the stall reason
    or last error): in a last column when there is room for it, else on a line of its own
    below the mission. ``styler(text, status)`` colours the mark, bar, status and note
    after the layout is computed. Very narrow widths keep at least 4 characters of goal.
    """
    style = styler or _plain
    views = list(views)
    id_w = min(max([8, *(len(v.short_id) for v in views)]), 16)
    status_w, steps_w, time_w = 9, 5, 6
    # mark+space, id, steps, status, elapsed, eta (each with its 2-space gap)
    fixed = 2 + id_w + 2 + steps_w + 2 + status_w + 2 + time_w + 2 + time_w
    bar_w = max(int(bar_width), 0)
    min_goal = 20
    room = width - fixed - (min_goal + 2) - (4 + 2)  # what is left for the bar itself
    if bar_w > room - 1:
        bar_w = room - 1 if room - 1 >= 5 else 0  # shrink the bar, or show the percent only
    fixed += (bar_w + 1 if bar_w else 0) + 4 + 2
    longest_goal = max([4, *(len(v.goal) for v in views)])
    goal_w = max(4, min(longest_goal, 48, width - fixed - 2))
    inline_w = width - fixed - (goal_w + 2) - 2
    any_notes = notes and any(table_note(v) for v in views)
    note_w = inline_w if any_notes and inline_w >= 24 else 0
    indent = 2 + id_w + 2
    below_w = width - indent - 2 if any_notes and not note_w else 0

    def line(*cells: str, note: str = "", st: str = "") -> str:
        mark, ident, goal, bar, steps, status, elapsed, eta = cells
        parts = [
            style(mark, st),
            " ",
            f"{ident:<{id_w}}",
            "  ",
            f"{goal:<{goal_w}}",
            "  ",
            bar,
            "  ",
            f"{steps:>{steps_w}}",
            "  ",
            style(f"{status:<{status_w}}", st),
            "  ",
            f"{elapsed:>{time_w}}",
            "  ",
            f"{eta:>{time_w}}",
        ]
        if note:
            parts += ["  ", style(note, st)]
        return "".join(parts).rstrip()

    lines = []
    if header:
        bar_head = f"{'PROGRESS':<{bar_w + 5}}" if bar_w else "DONE"
        heads = (" ", "ID", "GOAL", bar_head, "STEPS", "STATUS", "TIME", "ETA")
        lines.append(line(*heads, note="NOTE" if note_w else ""))
    for view in views:
        bar_text = format_percent(view.progress)
        if bar_w:
            bar_text = style(format_bar(view.progress, bar_w, ascii=ascii), view.status)
            bar_text += " " + format_percent(view.progress)
        note = table_note(view) if notes else ""
        lines.append(
            line(
                status_mark(view.status, ascii=ascii),
                truncate(view.short_id, id_w, ascii=ascii),
                truncate(view.goal, goal_w, ascii=ascii),
                bar_text,
                format_steps(view),
                truncate(view.status, status_w, ascii=ascii),
                format_duration(view.elapsed),
                format_duration(view.eta) if view.eta is not None else "",
                note=truncate(note, note_w, ascii=ascii) if note_w else "",
                st=view.status,
            )
        )
        if note and below_w >= 8:
            arrow = "-> " if ascii else "\u2514 "
            text = truncate(note, below_w - len(arrow), ascii=ascii)
            lines.append(" " * indent + style(arrow + text, view.status))
    return lines


def format_line(view: MissionView, clock: float | None = None, *, ascii: bool = True) -> str:
    """One self-contained log line for a mission (non-terminal output: CI logs, pipes)::

    [  4.2s] 1a2b3c4d running    [######..........]  2/5  Plan a trip to Lisbon
    """
    stamp = f"[{format_duration(clock):>6}] " if clock is not None else ""
    text = (
        f"{stamp}{view.short_id} {view.status:<9} [{format_bar(view.progress, 16, ascii=ascii)}]"
        f" {format_steps(view):>5}  {' '.join(view.goal.split())}"
    )
    note = table_note(view)
    if note:
        text += f"  -- {' '.join(note.split())}"
    return text


def change_key(view: MissionView) -> tuple:
    """What must change for a plain-text log to print a new line about a mission."""
    return (view.status, view.n_done, view.n_steps, view.stall_reason, view.finished)
