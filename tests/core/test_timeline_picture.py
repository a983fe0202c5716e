"""The timeline picture, from events alone: one segment per attempt with its times, backoff
gaps, hatched waits, stall flags, cancels, model-call ticks with tokens and cost, the
concurrency lane, the "now" line, pages, and files that parse."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from mission_widgets.core.events import make_event
from mission_widgets.core.progress import status_style
from mission_widgets.core.timeline import concurrency, mission_traces
from mission_widgets.core.timeline_draw import Timeline

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1_700_000_000.0


def ev(name, mission="m1", at=0.0, **fields):
    return make_event(name, mission, timestamp=T0 + at, **fields)


def retry_wait_and_call(mission="m1", shift=0.0):
    """Step a fails once (backoff), succeeds; step b waits for a person who skips it."""
    s = shift
    return [
        ev("mission_start", mission, s + 0, goal=f"goal of {mission}", model="openai:gpt-4o"),
        ev("planner_start", mission, s + 0.1),
        ev(
            "model_call",
            mission,
            s + 0.9,
            model="openai:gpt-4o",
            purpose="plan",
            prompt_tokens=1200,
            completion_tokens=300,
            cost_usd=0.006,
            duration_ms=700,
        ),
        ev("planner_done", mission, s + 1.0, steps=[{"id": "a"}, {"id": "b"}]),
        ev("step_start", mission, s + 1.0, step_id="a", attempt=1),
        ev("heartbeat", mission, s + 1.5),
        ev(
            "step_failure",
            mission,
            s + 2.0,
            step_id="a",
            attempt=1,
            error_type="execution_error",
            error_message="ConnectionError: boom",
        ),
        ev("retry_start", mission, s + 2.0, step_id="a", attempt=2, delay_secs=1.0),
        ev("step_start", mission, s + 3.0, step_id="a", attempt=2),
        ev(
            "model_call",
            mission,
            s + 3.5,
            step_id="a",
            attempt=2,
            model="house-llm",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=None,
            duration_ms=400,
        ),
        ev("step_success", mission, s + 4.0, step_id="a", attempt=2),
        ev("step_start", mission, s + 4.0, step_id="b", attempt=1),
        ev(
            "step_failure",
            mission,
            s + 5.0,
            step_id="b",
            attempt=1,
            error_type="timeout",
            error_message="timed out",
        ),
        ev("mission_waiting", mission, s + 5.0, step_id="b", reason="waiting for a decision"),
        ev("escalation_skip", mission, s + 7.0, step_id="b", reason="decided by a person: skip"),
        ev("mission_resumed", mission, s + 7.0, step_id="b"),
        ev("step_done", mission, s + 7.0, step_id="b", resolved_by="decision"),
        ev("mission_done", mission, s + 7.5, status="succeeded"),
    ]


def stalled_then_cancelled(mission="m2"):
    return [
        ev("mission_start", mission, 2.0, goal="slow one"),
        ev("mission_planned", mission, 2.0, steps=[{"id": "x"}]),
        ev("step_start", mission, 2.5, step_id="x", attempt=1),
        ev("mission_stall", mission, 4.0, reason="no_progress"),
        ev("mission_recovered", mission, 5.0),
        ev("mission_stall", mission, 6.0, reason="no_heartbeat"),
        ev("mission_done", mission, 6.5, status="cancelled", error_message="cancelled by you"),
    ]


def parse(svg_text):
    return ET.fromstring(svg_text)


def with_class(root, name):
    return [el for el in root.iter() if name in (el.get("class") or "").split()]


def title_of(el):
    title = el.find(f"{SVG}title")
    return "" if title is None else title.text


def test_attempts_backoffs_waits_and_calls_come_from_the_events():
    [trace] = mission_traces(retry_wait_and_call())
    assert trace.steps == ["a", "b"]
    assert [
        (a.step_id, a.attempt, a.start - T0, a.end - T0, a.outcome) for a in trace.attempts
    ] == [
        ("a", 1, 1.0, 2.0, "failed"),
        ("a", 2, 3.0, 4.0, "succeeded"),
        ("b", 1, 4.0, 5.0, "timeout"),
    ]
    kinds = [(i.kind, i.start - T0, i.end - T0) for i in trace.intervals]
    assert kinds == [("backoff", 2.0, 3.0), ("wait", 5.0, 7.0)]
    assert (trace.plan.start - T0, trace.plan.end - T0) == pytest.approx((0.1, 1.0))
    plan_call, step_call = trace.model_calls
    assert step_call.step_id == "a" and step_call.attempt == 2
    assert (plan_call.start - T0, plan_call.end - T0) == pytest.approx((0.2, 0.9), abs=1e-6)
    assert trace.tokens == 1515
    assert math.isnan(trace.cost_usd)  # one call of unknown price: the total is unknown
    assert {m.kind for m in trace.marks} == {"escalation", "skip"}


def test_events_without_a_usable_time_are_left_out():
    events = retry_wait_and_call()
    for bad, step in ((math.nan, "z"), ("soon", "y"), (True, "x")):
        events.insert(5, {**ev("step_start", at=1.2, step_id=step, attempt=1), "timestamp": bad})
    [trace] = mission_traces(events)
    assert trace.steps == ["a", "b"] and len(trace.attempts) == 3


def test_the_svg_has_one_segment_per_attempt_with_its_times_and_parses():
    events = retry_wait_and_call() + stalled_then_cancelled()
    root = parse(Timeline(mission_traces(events), now=T0 + 100).to_svg())
    attempts = with_class(root, "attempt")
    assert len(attempts) == 4
    got = {(a.get("data-mission"), a.get("data-step"), a.get("data-attempt")): a for a in attempts}
    first = got[("m1", "a", "1")]
    assert float(first.get("data-start")) == T0 + 1.0 and float(first.get("data-end")) == T0 + 2.0
    assert first.get("fill") == status_style("failed").colour
    assert "ConnectionError: boom" in title_of(first)
    assert got[("m1", "a", "2")].get("fill") == status_style("succeeded").colour
    assert got[("m1", "b", "1")].get("data-outcome") == "timeout"
    # the cancel ended m2's running attempt: cancelled, at the cancel's time
    cancelled = got[("m2", "x", "1")]
    assert cancelled.get("data-outcome") == "cancelled"
    assert float(cancelled.get("data-end")) == T0 + 6.5
    # later attempts are drawn further right, longer ones wider
    xs = [float(got[("m1", "a", n)].get("x")) for n in ("1", "2")]
    assert xs[0] < xs[1]


def test_markers_for_backoff_wait_stall_cancel_and_model_calls_are_there():
    events = retry_wait_and_call() + stalled_then_cancelled()
    root = parse(Timeline(mission_traces(events), now=T0 + 100).to_svg())
    [backoff] = with_class(root, "backoff")
    assert "backoff 1 s" in title_of(backoff)
    [wait] = with_class(root, "wait")
    assert wait.get("fill").endswith("-hatch)")
    pattern_ids = {p.get("id") for p in root.iter(f"{SVG}pattern")}
    assert wait.get("fill")[5:-1] in pattern_ids
    stalls = with_class(root, "stall")
    assert [s.text for s in stalls] == ["⚑", "⚑"]
    assert "no_progress" in title_of(stalls[0])
    [cancel] = with_class(root, "cancel")
    assert cancel.text == "✕" and float(cancel.get("data-at")) == T0 + 6.5
    calls = with_class(root, "model-call")
    assert len(calls) == 2
    tips = sorted(map(title_of, calls))
    assert "model call (plan): openai:gpt-4o, 1,200 in / 300 out tokens, $0.0060" in tips[0]
    assert "house-llm, 10 in / 5 out tokens, unknown" in tips[1]


def test_the_concurrency_lane_counts_missions_running_at_once_against_the_window():
    events = retry_wait_and_call() + stalled_then_cancelled()
    traces = mission_traces(events)
    assert [(t - T0, n) for t, n in concurrency(traces, T0 + 100)] == [
        (0.0, 1),
        (2.0, 2),
        (6.5, 1),
        (7.5, 0),
    ]
    root = parse(Timeline(traces, now=T0 + 100, window=3).to_svg())
    [lane] = with_class(root, "concurrency")
    assert lane.get("data-peak") == "2"
    assert "at most 2 of a window of max_concurrent=3" in title_of(lane)
    assert with_class(root, "window")


def test_a_now_line_shows_only_while_a_mission_runs():
    finished = mission_traces(retry_wait_and_call())
    assert not with_class(parse(Timeline(finished, now=T0 + 50).to_svg()), "now")
    running = mission_traces(retry_wait_and_call()[:9])  # stopped inside a's second attempt
    root = parse(Timeline(running, now=T0 + 3.4).to_svg())
    assert with_class(root, "now")
    [open_attempt] = [a for a in with_class(root, "attempt") if a.get("data-outcome") == "running"]
    assert open_attempt.get("data-end") == ""


def test_without_steps_the_attempts_sit_on_the_mission_row():
    root = parse(Timeline(mission_traces(retry_wait_and_call()), steps=False).to_svg())
    assert len(with_class(root, "attempt")) == 3
    assert not with_class(root, "steps")


def test_many_missions_are_drawn_in_pages_that_share_one_axis():
    events = [e for i in range(120) for e in retry_wait_and_call(f"m{i}", shift=i * 0.5)]
    timeline = Timeline(mission_traces(events), now=T0 + 500)
    assert timeline.pages == 3 and len(timeline.traces) == 50
    third = timeline.page(3)
    assert len(third.traces) == 20
    assert "missions 101-120 (page 3 of 3" in third.caption()
    first_axis = with_class(parse(timeline.to_svg()), "axis")[0]
    third_axis = with_class(parse(third.to_svg()), "axis")[0]
    assert ET.tostring(first_axis) == ET.tostring(third_axis)
    # the lane counts every mission, not only the page's
    lane = with_class(parse(third.to_svg()), "concurrency")[0]
    assert int(lane.get("data-peak")) > 1
    assert (
        len(with_class(parse(Timeline(timeline.traces, page_size=None).to_svg()), "mission")) == 50
    )
    with pytest.raises(ValueError, match="page must be 1..3"):
        timeline.page(4)
    with pytest.raises(ValueError, match="page_size"):
        Timeline([], page_size=0)


def test_each_page_of_a_timeline_is_the_picture_that_page_draws_alone():
    # The pages share what they have in common (axis, lane, extent, cost) once drawn.
    events = [e for i in range(60) for e in retry_wait_and_call(f"m{i}", shift=i * 0.5)]
    events += retry_wait_and_call("late", shift=40.0)[:9]  # still running
    traces = mission_traces(events)
    timeline = Timeline(traces, now=T0 + 42.0, window=3, page_size=25)

    def unprefixed(text, picture):
        return text.replace(picture.prefix, "P")

    for n in (1, 3, 2, 1):
        page = timeline.page(n)
        alone = Timeline(traces, now=T0 + 42.0, window=3, page_size=25, page=n)
        assert unprefixed(page.to_html(), page) == unprefixed(alone.to_html(), alone)
        assert page.caption() == alone.caption()
    line = with_class(parse(timeline.to_svg()), "now")[0]  # the lane's
    timeline.now = T0 + 43.0  # a later look at the same missions
    later = with_class(parse(timeline.page(1).to_svg()), "now")[0]
    assert float(later.get("x1")) > float(line.get("x1"))


def test_save_writes_svg_and_html_that_parse(tmp_path):
    timeline = Timeline(mission_traces(retry_wait_and_call() + stalled_then_cancelled()))
    svg_path = timeline.save(tmp_path / "t.svg")
    assert len(with_class(ET.parse(svg_path).getroot(), "attempt")) == 4
    assert timeline.save(tmp_path / "t.html") == str(tmp_path / "t.html")
    text = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.count("<details") == 2
    assert timeline._repr_html_().count('class="attempt') == 4
    assert timeline._repr_svg_().startswith("<svg")
    with pytest.raises(ValueError, match=r"\.svg or \.html"):
        timeline.save(tmp_path / "t.png")


def test_text_from_events_is_escaped():
    events = [
        ev("mission_start", "m9", 0, goal="<script>alert(1)</script> & co"),
        ev("mission_done", "m9", 1, status="failed", error_message='"quoted" <b>'),
    ]
    text = Timeline(mission_traces(events)).to_svg()
    assert "<script>" not in text and "<b>" not in text
    parse(text)
    odd = 'a "b" <c> & d'  # a step id is any text: attributes are escaped too
    events = [ev("mission_start", "m8", 0), ev("step_start", "m8", 0.5, step_id=odd, attempt=1)]
    for _ in range(2):  # and again, as remembered
        [attempt] = with_class(parse(Timeline(mission_traces(events)).to_svg()), "attempt")
        assert attempt.get("data-step") == odd
