"""Timeline and trace benchmark (issue 22): drawing and exporting many missions, as ratios.

Run from the repository root:

    .venv/bin/python bench/bench_timeline.py            # 1,000 x 5 drawn, 10,000 exported
    .venv/bin/python bench/bench_timeline.py --quick    # 200 x 5 and 1,000

The events are synthetic (as a store would hold them: a start, a plan, five steps of which
every third fails once and is retried after a backoff, a model call per step, the end), so
only the picture and the export are measured, against baselines from the same run:

* traces        events -> MissionTrace objects / one pass that reads every event's name and time
* draw          traces -> the SVG of all missions in one picture (``page_size=None``)
                / one ``<rect>`` string per attempt (the floor of any SVG of them)
* spans         10,000 missions -> OpenTelemetry spans through an SDK TracerProvider (no
                exporter) / the same number of bare spans started and ended directly
* chrome        10,000 missions -> the Chrome trace-event document (absolute time only)

Targets (issue 22): the 1,000 x 5 picture drawn in <= 0.5 s; the 10,000 missions' spans in
<= 5 s. Medians of interleaved repetitions; absolute times are printed beside the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from mission_widgets.core.events import make_event
from mission_widgets.core.timeline import mission_traces
from mission_widgets.core.timeline_draw import Timeline
from mission_widgets.core.trace_chrome import chrome_trace

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


def median_time(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(subject: Callable[[], object], base: Callable[[], object], repeat: int):
    s, b = [], []
    for _ in range(repeat):
        s.append(median_time(subject, 1))
        b.append(median_time(base, 1))
    return statistics.median(s), statistics.median(b)


def line(name: str, subject: float, base: float, target: str = "") -> str:
    return (
        f"{name:<8} {subject * 1000:9.1f} ms  baseline {base * 1000:8.1f} ms  "
        f"ratio {subject / base:7.1f}x  {target}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n_draw, n_export = (200, 1_000) if args.quick else (1_000, 10_000)

    events = synthetic_events(n_draw)
    traces = mission_traces(events)
    attempts = [a for t in traces for a in t.attempts]
    print(f"{n_draw} missions x {STEPS} steps: {len(events):,} events, {len(attempts):,} attempts")

    s, b = interleaved(
        lambda: mission_traces(events),
        lambda: [(e["event"], e["timestamp"]) for e in events],
        args.repeat,
    )
    print(line("traces", s, b))
    timeline = Timeline(traces, page_size=None, now=traces[-1].end)

    def floor() -> str:
        return "".join(f'<rect x="{a.start}" width="{a.end}" fill="#000"/>' for a in attempts)

    s, b = interleaved(timeline.to_svg, floor, args.repeat)
    svg = timeline.to_svg()
    print(
        line(
            "draw",
            s,
            b,
            f"target <= 500 ms: {'ok' if s <= 0.5 else 'MISSED'}; {len(svg) / 1e6:.1f} MB of SVG",
        )
    )
    total = median_time(lambda: Timeline(mission_traces(events), page_size=None).to_svg(), 3)
    print(f"events -> traces -> SVG in one go: {total * 1000:.1f} ms")

    export_traces = mission_traces(synthetic_events(n_export))
    try:
        from opentelemetry.sdk.trace import TracerProvider

        from mission_widgets.orchestrator.otel_spans import export_spans
    except ImportError:
        print("spans: skipped (pip install 'mission-widgets[otel]')")
    else:
        n_spans = export_spans(export_traces, TracerProvider())
        tracer = TracerProvider().get_tracer("baseline")

        def bare() -> None:
            for _ in range(n_spans):
                tracer.start_span("x").end()

        s, b = interleaved(
            lambda: export_spans(export_traces, TracerProvider()), bare, max(1, args.repeat // 2)
        )
        print(
            line(
                "spans",
                s,
                b,
                f"{n_export:,} missions, {n_spans:,} spans; target <= 5 s: "
                f"{'ok' if s <= 5 else 'MISSED'}",
            )
        )
    chrome = median_time(lambda: chrome_trace(export_traces), 3)
    print(f"chrome   {chrome * 1000:9.1f} ms  ({n_export:,} missions)")


if __name__ == "__main__":
    main()
