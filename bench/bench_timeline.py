"""Timeline and trace benchmark (issue 22): drawing and exporting many missions, as ratios.

Run from the repository root:

    .venv/bin/python bench/bench_timeline.py            # 1,000 x 5 drawn, 10,000 exported
    .venv/bin/python bench/bench_timeline.py --quick    # 200 x 5 and 1,000

The missions are synthetic (a start, a plan, five steps of which every third fails once and
is retried after a backoff, a model call per step, the end: about 25 events a mission),
written in bulk into a real store, which a MissionOrchestrator then reads, as after a
restart. What is timed, each against a baseline of the same run (interleaved, median and
p90, load average recorded):

* picture       ``orch.timeline()`` of the store's 1,000 missions, then
                - ``page 1``: ``.to_html()`` (what a notebook shows: 50 missions, the axis and
                  the concurrency lane of all 1,000);
                - ``all pages``: ``.page(n).to_html()`` of each of the 20 pages;
                - ``one svg``: ``timeline(page_size=None).to_svg()``, all in one picture;
                / the floor: one query reading every event's payload, ``json.loads`` of
                each, and one ``<rect>`` string per attempt.
* traces, draw  the pure parts apart: events -> MissionTrace objects (/ reading every
                event's name and time); traces -> one SVG of all (/ one ``<rect>`` per attempt).
* spans         ``orch.export_spans(provider)`` of the store's 10,000 missions, the provider
                an SDK TracerProvider with a SimpleSpanProcessor and an exporter that drops
                what it gets (every arm alike)
                / ``same spans``: the very spans (names, parents, times, attributes, span
                  events) replayed through the SDK from a list made beforehand: the SDK's own
                  cost of these spans, with no work of ours;
                / ``bare``: as many spans without attributes or parents.
* chrome        ``orch.export_trace(path)`` of the 10,000 missions (absolute time only).
* hot path      what a worker does per model call for these pictures and spans: a
                ``model_call`` event emitted by a mission (priced and counted, as now)
                / the same with the pricing and counting turned off (``count_model_call``
                replaced by a no-op); and with a mission Budget, its check before each call.
                Per call, in microseconds (bench_runtime.py's P1, a no-op mission, makes no
                model call: this is the part of a worker's hot path that the counting adds).

Targets (issue 22): the 1,000 x 5 picture drawn in <= 0.5 s; the 10,000 missions' spans in
<= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
if str(REPO_DIR) not in sys.path:
    sys.path.insert(1, str(REPO_DIR))

from bench_runtime import interleaved, median, p90  # noqa: E402

from mission_widgets.core.events import make_event  # noqa: E402
from mission_widgets.core.timeline import mission_traces  # noqa: E402
from mission_widgets.core.timeline_draw import Timeline  # noqa: E402
from mission_widgets.orchestrator.mission_orchestrator import MissionOrchestrator  # noqa: E402
from mission_widgets.runtime.store import MissionStore  # noqa: E402

STEPS = 5


def synthetic_events(n_missions: int, t0: float = 1_700_000_000.0) -> list[dict]:
    events: list[dict] = []
    for m in range(n_missions):
        mid, t = f"mission_{m:06d}", t0 + (m // 3) * 2.0  # a window of three
        add = events.append
        add(make_event("mission_start", mid, timestamp=t, goal=f"goal {m}"))
        add(make_event("planner_start", mid, timestamp=t + 0.01))
        add(
            make_event(
                "model_call",
                mid,
                timestamp=t + 0.2,
                model="openai:gpt-4o-mini",
                prompt_tokens=300,
                completion_tokens=120,
                cost_usd=0.0001,
                duration_ms=180.0,
                purpose="plan",
            )
        )
        add(
            make_event(
                "planner_done",
                mid,
                timestamp=t + 0.2,
                steps=[{"id": f"s{i}"} for i in range(STEPS)],
            )
        )
        t += 0.2
        for i in range(STEPS):
            sid = f"s{i}"
            add(make_event("step_start", mid, timestamp=t, step_id=sid, attempt=1))
            if (m + i) % 3 == 0:
                add(
                    make_event(
                        "step_failure",
                        mid,
                        timestamp=t + 0.1,
                        step_id=sid,
                        attempt=1,
                        error_type="execution_error",
                        error_message="boom",
                    )
                )
                add(
                    make_event(
                        "retry_start",
                        mid,
                        timestamp=t + 0.1,
                        step_id=sid,
                        attempt=2,
                        delay_secs=0.05,
                    )
                )
                t += 0.15
                add(make_event("step_start", mid, timestamp=t, step_id=sid, attempt=2))
            add(
                make_event(
                    "model_call",
                    mid,
                    timestamp=t + 0.2,
                    step_id=sid,
                    attempt=1,
                    model="openai:gpt-4o-mini",
                    prompt_tokens=200,
                    completion_tokens=80,
                    cost_usd=0.00008,
                    duration_ms=150.0,
                    purpose="step",
                )
            )
            add(make_event("step_success", mid, timestamp=t + 0.25, step_id=sid, attempt=1))
            t += 0.25
        add(make_event("mission_done", mid, timestamp=t, status="succeeded"))
    return events


def build_store(root: Path, events: Sequence[dict]) -> None:
    """A store holding ``events`` (finished missions), written in bulk as a worker's appends
    would have left it: a row per mission, an events row per event (its JSON payload)."""
    MissionStore(root).close()  # the schema
    rows: dict[str, list[Any]] = {}
    for e in events:
        mid = e["mission_id"]
        if mid not in rows:  # id, goal, status, backend, submitted_at, started_at, ...
            ts = e["timestamp"]
            rows[mid] = [mid, e.get("goal", ""), "succeeded", "subprocess", ts - 0.05, ts]
            rows[mid] += [None, "openai:gpt-4o-mini", STEPS]
        if e["event"] == "mission_done":
            rows[mid][6] = e["timestamp"]
    conn = sqlite3.connect(root / "store.sqlite")
    with conn:
        conn.executemany(
            "INSERT INTO missions (id, goal, status, backend, submitted_at, started_at,"
            " finished_at, model, n_steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            list(rows.values()),
        )
        conn.executemany(
            "INSERT INTO events (mission_id, event, timestamp, payload) VALUES (?, ?, ?, ?)",
            [
                (e["mission_id"], e["event"], float(e["timestamp"]), json.dumps(e, default=repr))
                for e in events
            ],
        )
    conn.close()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def timed_both(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (this process's): on a shared machine the CPU time is what the
    wall time would be alone, for work of one thread that does not wait."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def report(
    names: list[str], runs: list[list[tuple[float, float]]], base: int, targets: dict[str, float]
) -> None:
    """A line per arm: wall median and p90, CPU median, and the ratios of the medians to
    those of arm ``base``; a target is checked against the wall median (and the CPU's)."""
    floor = median([w for w, _ in runs[base]]), median([c for _, c in runs[base]])
    for name, times in zip(names, runs):
        walls, cpus = [w for w, _ in times], [c for _, c in times]
        wall, cpu = median(walls), median(cpus)
        ratio = ""
        if name != names[base]:
            ratio = f"  ratio {wall / floor[0]:5.1f}x (cpu {cpu / floor[1]:5.1f}x)"
        target = targets.get(name)
        verdict = ""
        if target is not None:
            verdict = f"  <= {target:g} s: wall {'ok' if wall <= target else 'MISSED'}"
            verdict += f", cpu {'ok' if cpu <= target else 'MISSED'}"
        spread = f"wall {wall * 1000:8.1f} ms (p90 {p90(walls) * 1000:8.1f})  cpu {cpu * 1000:8.1f}"
        print(f"  {name:<12} {spread}{ratio}{verdict}")


def bench_picture(root: Path, reps: int) -> None:
    orch = MissionOrchestrator(store=root)
    try:
        db = str(root / "store.sqlite")

        def page_1() -> str:
            return orch.timeline().to_html()

        def all_pages() -> list[str]:
            timeline = orch.timeline()
            return [timeline.page(n).to_html() for n in range(1, timeline.pages + 1)]

        def one_svg() -> str:
            return orch.timeline(page_size=None).to_svg()

        def floor() -> str:
            conn = sqlite3.connect(db)
            try:
                payloads = conn.execute("SELECT payload FROM events").fetchall()
            finally:
                conn.close()
            loads = json.loads
            events = [loads(p) for (p,) in payloads]
            return "".join(
                f'<rect x="{e["timestamp"]}" width="1" fill="#000"/>'
                for e in events
                if e["event"] == "step_start"
            )

        timeline = orch.timeline()
        sizes = len(page_1()) / 1e6, sum(map(len, all_pages())) / 1e6
        print(
            f"  {len(timeline)} missions, {timeline.pages} pages; page 1: {sizes[0]:.2f} MB "
            f"of HTML, all pages {sizes[1]:.1f} MB"
        )
        arms = [page_1, all_pages, one_svg, floor]
        runs = interleaved([lambda a=a: timed_both(a) for a in arms], reps)
        report(
            ["page 1", "all pages", "one svg", "floor"],
            runs,
            3,
            {"page 1": 0.5, "all pages": 0.5, "one svg": 0.5},
        )
    finally:
        orch.close()


def bench_pure(events: list[dict], reps: int) -> None:
    traces = mission_traces(events)
    attempts = [a for t in traces for a in t.attempts]
    timeline = Timeline(traces, page_size=None, now=traces[-1].end)

    def rects() -> str:
        return "".join(f'<rect x="{a.start}" width="{a.end}" fill="#000"/>' for a in attempts)

    arms = [
        lambda: mission_traces(events),
        lambda: [(e["event"], e["timestamp"]) for e in events],
        timeline.to_svg,
        rects,
    ]
    runs = interleaved([lambda a=a: timed_both(a) for a in arms], reps)
    report(["traces", "name+time"], runs[:2], 1, {})
    report(["draw (svg)", "one rect"], runs[2:], 1, {})


class _DropSpans:
    """A span exporter that drops what it gets (so only the making of spans is timed)."""

    def export(self, spans: object) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _provider(exporter: Any = None) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter or _DropSpans()))
    return provider


def _replay_plan(orch: MissionOrchestrator) -> list[Any]:
    """The spans ``export_spans`` makes, as a tree of (name, start, end, attributes,
    events, status, children), to replay through the SDK with no logic of ours."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    orch.export_spans(_provider(exporter))
    spans = exporter.get_finished_spans()
    nodes = {
        s.context.span_id: (
            s.name,
            s.start_time,
            s.end_time,
            dict(s.attributes or {}),
            [(e.name, dict(e.attributes or {}), e.timestamp) for e in s.events],
            s.status,
            [],
        )
        for s in spans
    }
    roots = []
    for s in sorted(spans, key=lambda s: s.start_time or 0):
        if s.parent is None:
            roots.append(nodes[s.context.span_id])
        else:
            nodes[s.parent.span_id][6].append(nodes[s.context.span_id])
    exporter.clear()
    return roots


def bench_spans(root: Path, reps: int) -> None:
    try:
        from opentelemetry import trace
    except ImportError:
        print("  spans: skipped (pip install 'mission-widgets[otel]')")
        return
    orch = MissionOrchestrator(store=root)
    try:
        plan = _replay_plan(orch)
        n_spans = orch.export_spans(_provider())

        def ours() -> int:
            return orch.export_spans(_provider())

        def same_spans() -> None:
            tracer = _provider().get_tracer("baseline")
            invalid = trace.set_span_in_context(trace.INVALID_SPAN)

            def make(node: Any, context: Any) -> None:
                name, start, end, attributes, events, status, children = node
                span = tracer.start_span(
                    name, context=context, start_time=start, attributes=attributes
                )
                inner = trace.set_span_in_context(span)
                for child in children:
                    make(child, inner)
                for event, attrs, at in events:
                    span.add_event(event, attributes=attrs, timestamp=at)
                if status.status_code is not trace.StatusCode.UNSET:
                    span.set_status(status)
                span.end(end_time=end)

            for node in plan:
                make(node, invalid)

        def bare() -> None:
            tracer = _provider().get_tracer("baseline")
            for _ in range(n_spans):
                tracer.start_span("x").end()

        print(f"  {len(plan):,} missions, {n_spans:,} spans")
        runs = interleaved([lambda a=a: timed_both(a) for a in (ours, same_spans, bare)], reps)
        report(["ours", "same spans"], runs[:2], 1, {"ours": 5.0})
        report(["ours", "bare"], [runs[0], runs[2]], 1, {})
        path = root / "trace.json"
        chrome = [timed(lambda: orch.export_trace(path)) for _ in range(3)]
        print(
            f"  chrome trace: median {median(chrome) * 1000:.1f} ms "
            f"({path.stat().st_size / 1e6:.1f} MB)"
        )
    finally:
        orch.close()


def bench_hot_path(reps: int, calls: int = 5_000) -> None:
    from mission_widgets import Mission, MissionStep
    from mission_widgets.core import mission as mission_module
    from mission_widgets.core.budget import Budget, guard_for

    def mission(budget: Budget | None = None) -> Mission:
        return Mission("hot path", steps=[MissionStep("s", "s")], budget=budget, auto_plan=False)

    fields = {"model": "openai:gpt-4o-mini", "purpose": "step", "prompt_tokens": 200}
    fields.update(completion_tokens=80, duration_ms=150.0, step_id="s", attempt=1)

    def emit(m: Mission) -> None:
        for _ in range(calls):
            m._emit("model_call", **fields)
        m.audit_log.clear()

    def counted() -> None:
        emit(mission())

    def not_counted() -> None:
        saved = mission_module.count_model_call
        mission_module.count_model_call = lambda mission, fields: None
        try:
            emit(mission())
        finally:
            mission_module.count_model_call = saved

    def budget_checks() -> None:
        m = mission(Budget(max_tokens=10**12, max_cost_usd=10.0**9))
        guard = guard_for(m)
        assert guard is not None
        for _ in range(calls):
            guard("openai:gpt-4o-mini", "a prompt of some words", None)
            m._emit("model_call", **fields)
        m.audit_log.clear()

    arms = (counted, not_counted, budget_checks)
    runs = interleaved([lambda a=a: timed_both(a) for a in arms], reps)
    per = [[cpu / calls * 1e6 for _, cpu in times] for times in runs]  # CPU: load-proof
    for name, times in zip(("counted", "not counted", "with a Budget"), per):
        print(
            f"  {name:<14} cpu median {median(times):6.1f} us per model call, p90 {p90(times):6.1f}"
        )
    extra = median(per[0]) - median(per[1])
    print(f"  pricing + counting: {extra:.1f} us per model call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    n_draw, n_export = (200, 1_000) if args.quick else (1_000, 10_000)
    scratch = Path(tempfile.mkdtemp(prefix="mw-bench-timeline-"))
    try:
        events = synthetic_events(n_draw)
        build_store(scratch / "draw", events)
        build_store(scratch / "export", synthetic_events(n_export))
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {load()}")
        print(f"picture: {n_draw:,} missions x {STEPS} steps, {len(events):,} events")
        bench_picture(scratch / "draw", args.reps)
        print(f"  (load {load()})")
        print("pure parts (no store):")
        bench_pure(events, args.reps)
        print(f"  (load {load()})")
        print(f"spans: {n_export:,} missions")
        bench_spans(scratch / "export", max(3, args.reps // 2))
        print(f"  (load {load()})")
        print("hot path (per model call):")
        bench_hot_path(args.reps)
        print(f"  (load {load()})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
