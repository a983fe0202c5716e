"""The geometry of the timeline picture: traces in, positioned shapes out (pure, no I/O).

Like tqdm's ``format_meter``, :func:`layout` is a pure function of its inputs (the
:class:`~.timeline.MissionTrace` list, the time "now", the size), so what the picture holds
is tested without a browser, and the renderer (:mod:`.timeline_draw`) only writes the shapes
out as SVG. Times are epoch seconds; each shape that stands for something in the events
keeps its times in ``data-start`` / ``data-end``.

The picture, top to bottom: a time axis, a lane showing how full the concurrency window
was, then one block per mission: its row (the mission's span coloured by how it ended,
planning, waits, stall flags, cancels, model calls) and, with ``steps``, a row per step
(each attempt a segment coloured by how it ended, backoff gaps dashed, waits for a person
hatched, model calls as ticks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .cost import format_usd
from .timeline import (
    BACKOFF_COLOUR,
    BUDGET_COLOUR,
    OUTCOME_COLOURS,
    STALL_FLAG_COLOUR,
    MissionTrace,
    concurrency,
)

LABEL_WIDTH = 220
MISSION_ROW = 22
STEP_ROW = 16
AXIS_HEIGHT = 22
LANE_HEIGHT = 44
RIGHT_MARGIN = 12
HATCH = "hatch"  # the id (after the picture's prefix) of the hatch pattern of waits


@dataclass
class Shape:
    """One SVG element: ``tag`` with ``attrs``, an optional ``<title>`` and text content."""

    tag: str
    attrs: dict[str, Any]
    title: str | None = None
    text: str | None = None


@dataclass
class Block:
    """One mission: its row (``head``) and its steps' rows (``body``), each drawn from y=0."""

    mission_id: str
    head: list[Shape]
    body: list[Shape]
    head_height: float = MISSION_ROW
    body_height: float = 0.0


@dataclass
class Layout:
    width: float
    t0: float
    t1: float
    now: float | None  # the "now" line's time, None when nothing runs
    axis: list[Shape]
    lane: list[Shape]
    blocks: list[Block] = field(default_factory=list)


class Scale:
    """Epoch seconds -> x pixels over ``[t0, t1]``."""

    def __init__(self, t0: float, t1: float, width: float) -> None:
        self.t0, self.left = t0, float(LABEL_WIDTH)
        self.per_sec = (width - LABEL_WIDTH - RIGHT_MARGIN) / max(t1 - t0, 1e-6)

    def x(self, t: float) -> float:
        return round(self.left + (t - self.t0) * self.per_sec, 2)

    def span(self, start: float, end: float) -> tuple[float, float]:
        """x and width (at least one pixel, so a short attempt stays visible)."""
        x0 = self.x(start)
        return x0, max(round(self.x(end) - x0, 2), 1.0)


def extent(traces: Sequence[MissionTrace], now: float) -> tuple[float, float]:
    """The picture's time range: first start (or submission) to last end, or now."""
    starts = [t.start if t.start is not None else t.submitted for t in traces]
    known = [s for s in starts if s is not None]
    t0 = min(known) if known else now
    running = any(t.start is not None and t.end is None for t in traces)
    ends = [t.last_time for t in traces]
    t1 = max([e for e in ends if e is not None] + ([now] if running else []) or [t0])
    return t0, max(t1, t0 + 1e-3)


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / target
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _axis(scale: Scale, t0: float, t1: float) -> list[Shape]:
    shapes = [
        Shape(
            "line",
            {
                "x1": scale.left,
                "x2": scale.x(t1),
                "y1": AXIS_HEIGHT - 2,
                "y2": AXIS_HEIGHT - 2,
                "stroke": "#888",
                "class": "axis",
            },
        )
    ]
    step = _nice_step(t1 - t0)
    k = 0
    while k * step <= (t1 - t0) + 1e-9 and k < 60:
        x = scale.x(t0 + k * step)
        label = f"+{_duration(k * step)}" if k else "0"
        shapes.append(
            Shape(
                "line",
                {"x1": x, "x2": x, "y1": AXIS_HEIGHT - 6, "y2": AXIS_HEIGHT - 2, "stroke": "#888"},
            )
        )
        shapes.append(
            Shape(
                "text",
                {
                    "x": x,
                    "y": AXIS_HEIGHT - 9,
                    "font-size": 10,
                    "text-anchor": "middle",
                    "fill": "#555",
                },
                text=label,
            )
        )
        k += 1
    return shapes


def _lane(
    traces: Sequence[MissionTrace], scale: Scale, now: float, window: int | None, t1: float
) -> list[Shape]:
    """The concurrency lane: missions running at once over time, against the window."""
    steps = concurrency(traces, now)
    peak = max([n for _, n in steps] + [window or 0, 1])
    top, bottom = 6.0, LANE_HEIGHT - 6.0

    def y(n: float) -> float:
        return round(bottom - (bottom - top) * n / peak, 2)

    points = [f"{scale.left},{bottom}"]
    level = 0
    for at, n in steps:
        x = scale.x(at)
        points += [f"{x},{y(level)}", f"{x},{y(n)}"]
        level = n
    points += [f"{scale.x(t1)},{y(level)}", f"{scale.x(t1)},{bottom}"]
    busiest = max([n for _, n in steps] + [0])
    title = f"missions running at once: at most {busiest}"
    if window:
        title += f" of a window of max_concurrent={window}"
    shapes = [
        Shape(
            "text",
            {"x": 6, "y": LANE_HEIGHT / 2 + 4, "font-size": 11, "fill": "#333"},
            text="running at once",
        ),
        Shape(
            "polygon",
            {
                "points": " ".join(points),
                "fill": "#90caf9",
                "stroke": OUTCOME_COLOURS["running"],
                "stroke-width": 1,
                "class": "concurrency",
                "data-peak": busiest,
            },
            title=title,
        ),
    ]
    if window:
        shapes.append(
            Shape(
                "line",
                {
                    "x1": scale.left,
                    "x2": scale.x(t1),
                    "y1": y(window),
                    "y2": y(window),
                    "stroke": "#455a64",
                    "stroke-dasharray": "4 3",
                    "class": "window",
                },
                title=f"max_concurrent={window}",
            )
        )
    return shapes


def _attempt(a: Any, trace: MissionTrace, scale: Scale, y: float, h: float, now: float) -> Shape:
    end = a.end if a.end is not None else now
    x, w = scale.span(a.start, end)
    what = a.outcome + (f" ({a.error_type}: {a.error_message})" if a.error_message else "")
    return Shape(
        "rect",
        {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "fill": OUTCOME_COLOURS.get(a.outcome, "#999"),
            "class": f"attempt {a.outcome}",
            "data-mission": trace.mission_id,
            "data-step": a.step_id,
            "data-attempt": a.attempt,
            "data-start": a.start,
            "data-end": "" if a.end is None else a.end,
            "data-outcome": a.outcome,
        },
        title=f"step {a.step_id}, attempt {a.attempt}: {what}, {_duration(end - a.start)}",
    )


def _grouped(n: int) -> str:
    """``1,234``: what ``f"{n:,}"`` says, without its cost for the common small counts."""
    return str(n) if -1000 < n < 1000 else f"{n:,}"


def _call_tick(c: Any, scale: Scale, y: float, h: float) -> Shape:
    x, w = scale.span(c.start, c.end)
    tokens = "tokens unknown"
    if c.prompt_tokens is not None or c.completion_tokens is not None:
        tokens = (
            f"{_grouped(c.prompt_tokens or 0)} in / {_grouped(c.completion_tokens or 0)} out tokens"
        )
    return Shape(
        "rect",
        {
            "x": x,
            "y": y,
            "width": max(w, 1.5),
            "height": h,
            "fill": "#212121",
            "fill-opacity": 0.7,
            "class": "model-call",
            "data-start": c.start,
            "data-end": c.end,
        },
        title=f"model call{f' ({c.purpose})' if c.purpose else ''}: {c.model or 'model'}, "
        f"{tokens}, {format_usd(c.cost_usd)}, {_duration(c.end - c.start)}",
    )


def _interval(iv: Any, scale: Scale, y: float, h: float, now: float, prefix: str) -> Shape:
    end = iv.end if iv.end is not None else now
    x, w = scale.span(iv.start, end)
    base = {"data-start": iv.start, "data-end": "" if iv.end is None else iv.end}
    if iv.kind == "backoff":
        return Shape(
            "line",
            {
                "x1": x,
                "x2": x + w,
                "y1": y + h / 2,
                "y2": y + h / 2,
                "stroke": BACKOFF_COLOUR,
                "stroke-dasharray": "2 2",
                "class": "backoff",
                **base,
            },
            title=f"{iv.label or 'backoff'} before the next attempt",
        )
    if iv.kind == "wait":
        return Shape(
            "rect",
            {
                "x": x,
                "y": y,
                "width": w,
                "height": h,
                "fill": f"url(#{prefix}-{HATCH})",
                "stroke": "#f9a825",
                "class": "wait",
                **base,
            },
            title=f"waiting for a person, {_duration(end - iv.start)}: {iv.label or ''}",
        )
    if iv.kind == "plan":
        return Shape(
            "rect",
            {"x": x, "y": y, "width": w, "height": h, "fill": "#78909c", "class": "plan", **base},
            title=f"planning, {_duration(end - iv.start)}",
        )
    return Shape(
        "line",
        {
            "x1": x,
            "x2": x + w,
            "y1": y + h,
            "y2": y + h,
            "stroke": STALL_FLAG_COLOUR,
            "stroke-width": 2,
            "class": "stall-span",
            **base,
        },
        title=f"stall flag raised: {iv.label}",
    )


_MARK_GLYPHS = {
    "cancel": "✕",
    "stall": "⚑",
    "recovered": "✓",
    "escalation": "◆",
    "skip": "»",
    "budget": "$",
}
_MARK_COLOURS = {
    "cancel": "#212121",
    "stall": STALL_FLAG_COLOUR,
    "recovered": OUTCOME_COLOURS["succeeded"],
    "escalation": "#f9a825",
    "skip": OUTCOME_COLOURS["skipped"],
    "budget": BUDGET_COLOUR,
}


def _mark(m: Any, scale: Scale, y: float, h: float) -> Shape:
    return Shape(
        "text",
        {
            "x": scale.x(m.at),
            "y": y + h - 3,
            "font-size": h - 4,
            "text-anchor": "middle",
            "fill": _MARK_COLOURS.get(m.kind, "#000"),
            "class": f"mark {m.kind}",
            "data-at": m.at,
        },
        title=f"{m.kind}: {m.label or ''}",
        text=_MARK_GLYPHS.get(m.kind, "•"),
    )


def _label(text: str, y: float, h: float, title: str, indent: int = 0) -> Shape:
    short = text if len(text) <= 30 - indent else text[: 29 - indent] + "…"
    return Shape(
        "text",
        {
            "x": 6 + indent * 6,
            "y": y + h / 2 + 4,
            "font-size": 11,
            "fill": "#222",
            "class": "label",
        },
        title=title,
        text=short,
    )


def _now_line(scale: Scale, now: float | None, height: float) -> list[Shape]:
    if now is None:
        return []
    x = scale.x(now)
    return [
        Shape(
            "line",
            {
                "x1": x,
                "x2": x,
                "y1": 0,
                "y2": height,
                "stroke": "#d50000",
                "stroke-dasharray": "3 2",
                "class": "now",
            },
            title="now",
        )
    ]


def _block(
    trace: MissionTrace, scale: Scale, now: float, steps: bool, prefix: str, now_line: float | None
) -> Block:
    h, pad = MISSION_ROW, 4
    cost = format_usd(trace.cost_usd) if trace.model_calls else "no model calls"
    head = [
        _label(
            trace.goal or trace.mission_id,
            0,
            h,
            f"{trace.mission_id}: {trace.goal} ({trace.status}; {trace.tokens:,} tokens, "
            f"cost {cost}){f'; {trace.error}' if trace.error else ''}",
        )
    ]
    if trace.start is not None:
        end = trace.end if trace.end is not None else now
        x, w = scale.span(trace.start, end)
        head.append(
            Shape(
                "rect",
                {
                    "x": x,
                    "y": pad,
                    "width": w,
                    "height": h - 2 * pad,
                    "fill": OUTCOME_COLOURS.get(trace.status, OUTCOME_COLOURS["running"]),
                    "fill-opacity": 0.25,
                    "class": f"mission {trace.status}",
                    "data-mission": trace.mission_id,
                    "data-start": trace.start,
                    "data-end": "" if trace.end is None else trace.end,
                },
                title=f"{trace.mission_id}: {trace.status}, "
                f"{_duration(end - trace.start)}, cost {cost}",
            )
        )
    if trace.plan is not None:
        head.append(_interval(trace.plan, scale, pad, h - 2 * pad, now, prefix))
    rows = {step_id: i for i, step_id in enumerate(trace.steps)} if steps else {}
    body: list[Shape] = []

    def row_of(step_id: str | None) -> tuple[list[Shape], float, float]:
        if step_id in rows:
            return body, rows[step_id] * STEP_ROW + 2, STEP_ROW - 4
        return head, pad + 1, h - 2 * pad - 2

    for step_id, i in rows.items():
        body.append(_label(step_id, i * STEP_ROW, STEP_ROW, f"step {step_id}", indent=2))
    for a in trace.attempts:
        shapes, y, hh = row_of(a.step_id)
        shapes.append(_attempt(a, trace, scale, y, hh, now))
    for iv in trace.intervals:
        shapes, y, hh = row_of(iv.step_id if iv.kind != "stall" else None)
        shapes.append(_interval(iv, scale, y, hh, now, prefix))
    for c in trace.model_calls:
        shapes, y, hh = row_of(c.step_id)
        shapes.append(_call_tick(c, scale, y - 1, hh + 2))
    for m in trace.marks:
        target = m.step_id if m.kind in ("skip", "escalation") else None
        shapes, y, hh = row_of(target)
        shapes.append(_mark(m, scale, y - 2, hh + 4))
    body_height = len(rows) * STEP_ROW
    head += _now_line(scale, now_line, h)
    body += _now_line(scale, now_line, body_height)
    return Block(trace.mission_id, head, body, h, body_height)


@dataclass
class Frame:
    """What every page of one timeline shares: the time range and its scale, the axis, the
    concurrency lane of all the timeline's missions and the "now" line's time."""

    scale: Scale
    t0: float
    t1: float
    now: float | None
    axis: list[Shape]
    lane: list[Shape]


def frame(
    everyone: Sequence[MissionTrace],
    *,
    now: float,
    width: float = 960,
    window: int | None = None,
    span: tuple[float, float] | None = None,
) -> Frame:
    """The :class:`Frame` of a picture of ``everyone`` (see :func:`layout`)."""
    t0, t1 = span if span is not None else extent(everyone, now)
    scale = Scale(t0, t1, width)
    running = any(t.start is not None and t.end is None for t in everyone)
    now_line = now if running and t0 <= now <= t1 + 1e-6 else None
    lane = _lane(everyone, scale, now, window, t1) + _now_line(scale, now_line, LANE_HEIGHT)
    return Frame(scale, t0, t1, now_line, _axis(scale, t0, t1), lane)


def layout(
    traces: Sequence[MissionTrace],
    *,
    now: float,
    steps: bool = True,
    width: float = 960,
    window: int | None = None,
    span: tuple[float, float] | None = None,
    lane_traces: Sequence[MissionTrace] | None = None,
    prefix: str = "mwt",
    shared: Frame | None = None,
) -> Layout:
    """Place every shape of the picture of ``traces``.

    ``span`` fixes the time range (pages of one timeline share it); ``lane_traces`` are the
    missions the concurrency lane counts (all of a timeline's, not one page's); ``window``
    draws the orchestrator's ``max_concurrent`` on the lane; ``prefix`` makes the ids of the
    picture's patterns unique in a page that shows several pictures. ``shared``, the
    :func:`frame` of all the pages, is made once for them all (else from the arguments above).
    """
    if shared is None:
        everyone = lane_traces if lane_traces is not None else traces
        shared = frame(everyone, now=now, width=width, window=window, span=span)
    scale, now_line = shared.scale, shared.now
    return Layout(
        width=width,
        t0=shared.t0,
        t1=shared.t1,
        now=now_line,
        axis=list(shared.axis),
        lane=list(shared.lane),
        blocks=[_block(trace, scale, now, steps, prefix, now_line) for trace in traces],
    )
