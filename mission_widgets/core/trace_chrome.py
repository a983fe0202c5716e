"""Missions as Chrome trace-event JSON (the format Perfetto and chrome://tracing open).

Pure: :func:`chrome_trace` turns :class:`~.timeline.MissionTrace` objects into the
document. A mission is a process (named by its goal), each step a thread of it (thread 0 is
the mission itself: its span, planning, waits, stalls); attempts, backoffs and model calls
are complete slices (``ph: "X"``), stall flags, cancels and decisions instants (``ph: "i"``),
and the number of missions running at once a counter (``ph: "C"``). Times are microseconds
since the first mission started.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .timeline import MissionTrace, concurrency


def _us(t: float, t0: float) -> float:
    return round((t - t0) * 1e6, 1)


def chrome_trace(traces: Sequence[MissionTrace], now: float | None = None) -> dict[str, Any]:
    """The trace-event document of ``traces`` (open intervals end at ``now``)."""
    starts = [t.start for t in traces if t.start is not None]
    t0 = min(starts) if starts else 0.0
    last = [t.last_time for t in traces if t.last_time is not None]
    end_of_open = now if now is not None else (max(last) if last else t0)
    out: list[dict[str, Any]] = []

    def span(
        name: str,
        cat: str,
        pid: int,
        tid: int,
        start: float,
        end: float | None,
        args: dict[str, Any],
    ) -> None:
        stop = end if end is not None else end_of_open
        out.append(
            {
                "name": name,
                "cat": cat,
                "ph": "X",
                "pid": pid,
                "tid": tid,
                "ts": _us(start, t0),
                "dur": max(_us(stop, t0) - _us(start, t0), 0.0),
                "args": args,
            }
        )

    for pid, trace in enumerate(traces, start=1):
        out.append(
            {
                "name": "process_name",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"name": f"{trace.goal or trace.mission_id} [{trace.mission_id}]"},
            }
        )
        out.append(
            {
                "name": "process_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"sort_index": pid},
            }
        )
        tids: dict[str | None, int] = {step_id: i for i, step_id in enumerate(trace.steps, start=1)}
        out.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "mission"}}
        )
        for step_id, tid in tids.items():
            out.append(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": pid,
                    "tid": tid,
                    "args": {"name": f"step {step_id}"},
                }
            )
        mission_args = {
            "mission_id": trace.mission_id,
            "status": trace.status,
            "error": trace.error,
            "tokens": trace.tokens,
            "cost_usd": None if trace.cost_usd != trace.cost_usd else trace.cost_usd,
        }
        if trace.start is not None:
            span(f"mission {trace.status}", "mission", pid, 0, trace.start, trace.end, mission_args)
        if trace.plan is not None:
            span(
                "plan",
                "plan",
                pid,
                0,
                trace.plan.start,
                trace.plan.end,
                {"error_type": trace.plan.error_type},
            )
        for a in trace.attempts:
            span(
                f"{a.step_id} #{a.attempt}",
                f"attempt,{a.outcome}",
                pid,
                tids.get(a.step_id, 0),
                a.start,
                a.end,
                {
                    "step_id": a.step_id,
                    "attempt": a.attempt,
                    "outcome": a.outcome,
                    "error_type": a.error_type,
                    "error": a.error_message,
                },
            )
        for iv in trace.intervals:
            tid = 0 if iv.kind == "stall" else tids.get(iv.step_id, 0)
            span(
                iv.kind,
                iv.kind,
                pid,
                tid,
                iv.start,
                iv.end,
                {"step_id": iv.step_id, "detail": iv.label},
            )
        for c in trace.model_calls:
            span(
                f"chat {c.model or ''}".strip(),
                "model_call",
                pid,
                tids.get(c.step_id, 0),
                c.start,
                c.end,
                {
                    "model": c.model,
                    "purpose": c.purpose,
                    "prompt_tokens": c.prompt_tokens,
                    "completion_tokens": c.completion_tokens,
                    "cost_usd": c.cost_usd,
                },
            )
        for m in trace.marks:
            out.append(
                {
                    "name": m.kind,
                    "cat": "mark",
                    "ph": "i",
                    "s": "t",
                    "pid": pid,
                    "tid": tids.get(m.step_id, 0) if m.step_id else 0,
                    "ts": _us(m.at, t0),
                    "args": {"detail": m.label},
                }
            )
    for at, n in concurrency(traces, end_of_open):
        out.append(
            {
                "name": "missions running",
                "ph": "C",
                "pid": 0,
                "tid": 0,
                "ts": _us(at, t0),
                "args": {"running": n},
            }
        )
    if traces:
        out.append(
            {
                "name": "process_name",
                "ph": "M",
                "pid": 0,
                "tid": 0,
                "args": {"name": "concurrency window"},
            }
        )
    return {
        "traceEvents": out,
        "displayTimeUnit": "ms",
        "otherData": {"source": "mission_widgets", "t0_epoch_s": t0},
    }
