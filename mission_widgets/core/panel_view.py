"""The panel's view-model: its tqdm-like header, which rows need attention, and each row as
the plain dict the browser draws. Pure functions of plain values, no I/O, no widgets.

The header reads like tqdm's ``format_meter``: ``12/40 [00:04<00:12, 2.4 missions/s]``
(ended/total, elapsed < remaining, rate). :func:`format_meter` is the one formula; the panel's
ES module (``widgets/panel.js``) runs the same one every second, so the clock ticks in the
browser without the kernel redrawing for time alone. When nothing left can move on its own
(every mission in flight waits for a person or is hung) the header says so instead of
inventing an ETA: ``3/40 [00:12, blocked: 2 wait for you]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .progress import FINISHED_STATUSES, MissionView, first_line, format_rate, status_style

#: Statuses whose rows are pinned above the rest: someone has to look at them.
ATTENTION_STATUSES = ("waiting", "stalled", "failed")
#: The header's stacked bar, in this order (pending last, drawn light: not yet work done).
BAR_ORDER = ("succeeded", "failed", "stalled", "cancelled", "running", "waiting", "pending")
#: Longest text of a row's second line and of a goal sent to the browser (it cuts further).
NOTE_CHARS = 300
GOAL_CHARS = 400


def format_clock(seconds: float | None) -> str:
    """tqdm's clock: ``'00:04'``, ``'12:34'``, ``'1:02:03'``; ``'?'`` when unknown."""
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "?"
    whole = int(max(seconds, 0.0) + 0.5)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def meter_rate(done: int, elapsed: float | None) -> float | None:
    """Missions ended per second over the elapsed time (None before the first ends)."""
    if not done or elapsed is None or elapsed <= 0:
        return None
    return done / elapsed


def format_meter(
    ended: int,
    total: int,
    elapsed: float | None,
    done: int,
    *,
    blocked: str | None = None,
    finished: bool = False,
) -> str:
    """The header line. ``done`` is how many ended since the clock started (the rate's
    numerator); ``blocked`` replaces the remaining time; ``finished`` says the total time.

    ``format_meter(12, 40, 5.0, 12)`` is ``'12/40 [00:05<00:12, 2.4 missions/s]'``.
    """
    if total <= 0:
        return "no missions yet"
    count = f"{ended}/{total}"
    rate = meter_rate(done, elapsed)
    rate_text = format_rate(rate) or "? missions/s"
    if elapsed is None:  # no clock: nothing ran while a panel watched
        if blocked:
            return f"{count} [{blocked}]"
        return f"{count} [all ended]" if ended >= total else f"{count} [not started]"
    if finished:
        return f"{count} [{format_clock(elapsed)} total, {rate_text}]"
    if blocked:
        return f"{count} [{format_clock(elapsed)}, {blocked}]"
    remaining = (total - ended) / rate if rate else None
    return f"{count} [{format_clock(elapsed)}<{format_clock(remaining)}, {rate_text}]"


def blocked_text(
    waiting: int, hung: int, healthy: int, pending: int, max_concurrent: int
) -> str | None:
    """What holds the work left, when nothing left can move on its own: every mission in
    flight waits for a person or is hung, and they hold every slot (or nothing is queued)."""
    holding = waiting + hung
    if not holding or healthy > 0 or (pending and holding < max_concurrent):
        return None
    parts = []
    if waiting:
        parts.append(f"{waiting} wait{'s' if waiting == 1 else ''} for you")
    if hung:
        parts.append(f"{hung} hung")
    return "blocked: " + ", ".join(parts)


class Wave(NamedTuple):
    """One run of work, from the first start to the moment nothing is left: what the
    header's clock and rate count. ``base`` is how many had ended when it began."""

    started_at: float
    base: int
    finished_at: float | None = None


def advance_wave(
    wave: Wave | None,
    ended: int,
    total: int,
    first_start: float | None,
    now: float,
    last_end: float | None = None,
) -> Wave | None:
    """The wave after this moment: a new one when a mission runs after an idle time (its
    clock from the earliest start of what is in flight; queued work alone starts no clock),
    closed at ``last_end`` (the last mission's end, else ``now``) when nothing is left."""
    if total - ended > 0:
        if wave is not None and wave.finished_at is None:
            return wave
        if first_start is None:
            return None
        return Wave(min(first_start, now), ended)
    if wave is not None and wave.finished_at is None:
        end = now if last_end is None else min(max(last_end, wave.started_at), now)
        return wave._replace(finished_at=end)
    return wave


class HeaderView(NamedTuple):
    """The header at one moment: what the browser draws and keeps ticking."""

    total: int
    ended: int
    done: int
    segments: tuple[tuple[str, int], ...]
    started_at: float | None
    finished_at: float | None
    blocked: str | None
    text: str

    def as_state(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "ended": self.ended,
            "done": self.done,
            "segments": [list(segment) for segment in self.segments],
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "blocked": self.blocked,
            "text": self.text,
        }


def bar_segments(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """The stacked bar's segments in :data:`BAR_ORDER` (planning counts as running)."""
    folded: dict[str, int] = {}
    for status, n in counts.items():
        key = "running" if status == "planning" else status
        folded[key] = folded.get(key, 0) + int(n)
    return tuple((s, folded[s]) for s in BAR_ORDER if folded.get(s))


def header_view(
    counts: Mapping[str, int],
    wave: Wave | None,
    now: float,
    *,
    in_flight: int = 0,
    blocked: str | None = None,
) -> HeaderView:
    """The header of missions counted by status. ``in_flight`` counts missions whose status
    is a final one but which have not ended (flagged stalled while their worker runs)."""
    total = sum(int(n) for n in counts.values())
    finished = sum(int(n) for status, n in counts.items() if status in FINISHED_STATUSES)
    ended = max(finished - int(in_flight), 0)
    started = wave.started_at if wave is not None else None
    stopped = wave.finished_at if wave is not None else None
    elapsed = None if started is None else max((stopped or now) - started, 0.0)
    done = ended - wave.base if wave is not None else 0
    over = total > 0 and ended == total and stopped is not None
    return HeaderView(
        total=total,
        ended=ended,
        done=max(done, 0),
        segments=bar_segments(counts),
        started_at=started,
        finished_at=stopped,
        blocked=None if over else blocked,
        text=format_meter(ended, total, elapsed, max(done, 0), blocked=blocked, finished=over),
    )


# -- rows ---------------------------------------------------------------------------------------


def is_waiting(view: MissionView) -> bool:
    return view.status == "waiting" or (view.waiting_on is not None and not view.finished)


#: The health flags of a running mission (``stall_reason``; None when healthy).
HEALTH_FLAGS = ("no_heartbeat", "no_progress")


def is_hung(view: MissionView) -> bool:
    """Running, but its heartbeat or progress stopped: a health flag (or, in a store that
    words it so, a ``stalled`` status on a mission that has not ended)."""
    if view.finished or is_waiting(view):
        return False
    return view.status == "stalled" or view.stall_reason in HEALTH_FLAGS


def needs_attention(view: MissionView) -> bool:
    """Waiting for a person, failed, stalled or hung: pinned above the other rows."""
    return view.status in ATTENTION_STATUSES or is_waiting(view) or is_hung(view)


def display_status(view: MissionView) -> str:
    """The status a row shows: ``waiting`` while a person is asked (whatever word the
    store uses for it)."""
    return "waiting" if is_waiting(view) else view.status


def _cut(text: str | None, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def row_note(view: MissionView) -> tuple[str, str]:
    """The row's second line and its kind: why it needs attention, else what it last said."""
    if is_waiting(view):
        return "waiting", f"waiting for you at step {view.waiting_on}" if view.waiting_on else ""
    if view.error_line:
        return "error", view.error_line
    if is_hung(view):  # the browser ticks it on: "no progress for 12 s"
        return "stall", str(view.stall_reason or "stalled").replace("_", " ")
    message = first_line(view.message)
    if message and not view.finished:  # what it says while it runs, not after
        return "message", message
    if view.status == "succeeded" and view.result_summary:
        return "result", f"result: {first_line(view.result_summary)}"
    return "", ""


def row_state(view: MissionView, cancellable: bool) -> dict[str, Any]:
    """One row as the browser draws it (plain JSON values, text bounded)."""
    status = display_status(view)
    kind, note = row_note(view)
    return {
        "id": view.mission_id,
        "short": view.short_id,
        "goal": _cut(view.goal, GOAL_CHARS),
        "status": status,
        "glyph": status_style(status).glyph,
        "progress": round(view.progress, 4),
        "steps": f"{view.n_done}/{view.n_steps}" if view.n_steps else "",
        "started_at": view.started_at,
        "elapsed": view.elapsed if view.finished else None,
        "finished": view.finished,
        "note": _cut(note, NOTE_CHARS),
        "note_kind": kind,
        "health": view.stall_reason if is_hung(view) else None,
        "heartbeat_at": view.heartbeat_at if is_hung(view) else None,
        "activity_at": None,
        "waiting_on": view.waiting_on if is_waiting(view) else None,
        "cancellable": bool(cancellable),
        "attention": needs_attention(view),
    }
