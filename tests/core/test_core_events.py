"""Events: fields, the audit log, sinks, report_progress and emit_event."""

from __future__ import annotations

import json
import threading

import pytest

import mission_widgets
from mission_widgets import Mission, MissionStep, emit_event, report_progress
from mission_widgets.core import EVENT_FIELDS, make_event
from mission_widgets.core.planning import PLAN_PROMPT_HEADER

#: The fields every event carries (read by sinks, the store and users' own log readers).
PUBLIC_FIELDS = (
    "event",
    "timestamp",
    "mission_id",
    "step_id",
    "attempt",
    "error_type",
    "error_message",
    "duration_ms",
)


def flaky_then(result):
    calls = []

    def executor(task, session, context):
        calls.append(task)
        if len(calls) == 1:
            raise PermissionError("403 forbidden")
        return result

    return executor


def eventful_mission(**kwargs):
    return Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=flaky_then("A")),
            MissionStep("b", "b", executor=lambda t, s, c: "B", parallel=True, depends_on="a"),
            MissionStep("c", "c", executor=lambda t, s, c: "C", parallel=True, depends_on="a"),
        ],
        backoff_factor=0,
        **kwargs,
    )


def test_event_fields_are_the_public_ones():
    assert tuple(EVENT_FIELDS) == PUBLIC_FIELDS
    event = make_event("custom", "m1", extra=1)
    assert set(PUBLIC_FIELDS) <= set(event)
    assert (event["event"], event["mission_id"], event["extra"]) == ("custom", "m1", 1)
    assert event["step_id"] is None


def test_every_event_in_the_audit_log_has_all_fields():
    mission = eventful_mission().run()
    assert mission.status == "succeeded"
    assert mission.audit_log
    for event in mission.audit_log:
        missing = set(PUBLIC_FIELDS) - set(event)
        assert not missing, (event["event"], missing)
        assert event["mission_id"] == mission.id
        assert isinstance(event["timestamp"], float)
    json.dumps(mission.audit_log)  # the log is plain JSON


def test_audit_log_tells_the_story_in_order():
    mission = eventful_mission().run()
    log = mission.audit_log
    names = [e["event"] for e in log]
    assert names[0] == "mission_start"
    assert names[1] == "mission_planned"
    assert names[-1] == "mission_done"
    a_events = [(e["event"], e["attempt"]) for e in log if e["step_id"] == "a"]
    assert a_events == [
        ("step_start", 1),
        ("step_failure", 1),
        ("retry_start", 2),
        ("step_start", 2),
        ("step_success", 2),
        ("retry_success", 2),
        ("step_done", 2),
    ]
    (failure,) = [e for e in log if e["event"] == "step_failure"]
    assert failure["error_type"] == "permission"
    assert failure["error_message"] == "PermissionError: 403 forbidden"
    assert failure["duration_ms"] >= 0
    done = log[-1]
    assert (done["status"], done["n_steps"], done["n_done"], done["n_failed"]) == (
        "succeeded",
        3,
        3,
        0,
    )
    assert done["duration_ms"] >= 0


def test_planner_events_carry_the_plan():
    plan = [{"id": "x", "description": "do x"}, {"id": "y", "description": "do y"}]

    def model(prompt):
        return json.dumps(plan) if prompt.startswith(PLAN_PROMPT_HEADER) else "done"

    mission = Mission("g", model=model).run()
    (done,) = [e for e in mission.audit_log if e["event"] == "planner_done"]
    assert done["n_steps"] == 2
    assert [s["id"] for s in done["steps"]] == ["x", "y"]
    assert done["duration_ms"] >= 0


def test_sinks_receive_the_same_events_as_the_audit_log():
    received = []
    lock = threading.Lock()

    def sink(event):
        with lock:
            received.append(event)

    mission = eventful_mission()
    mission.add_event_sink(sink)
    mission.run()
    assert received == mission.audit_log
    assert all(a is b for a, b in zip(received, mission.audit_log))


def test_removed_sink_receives_nothing_more():
    received = []
    mission = eventful_mission()
    mission.add_event_sink(received.append)
    mission.remove_event_sink(received.append)
    mission.run()
    assert received == []


def test_a_sink_that_raises_warns_and_the_mission_goes_on():
    def bad(event):
        if event["event"] == "mission_done":
            raise OSError("disk full")

    mission = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)])
    mission.add_event_sink(bad)
    with pytest.warns(RuntimeWarning, match="mission_done.*disk full"):
        mission.run()
    assert mission.status == "succeeded"


# -- report_progress / emit_event --------------------------------------------------------------


def test_report_progress_is_exported_at_the_top_level():
    assert mission_widgets.report_progress is report_progress
    assert mission_widgets.emit_event is emit_event


def test_report_progress_and_emit_event_outside_a_mission_return_false():
    assert report_progress(0.5, "nothing") is False
    assert emit_event("model_call", tokens=3) is False


def test_report_progress_inside_an_executor_emits_progress_events():
    returned = []

    def executor(task, session, context):
        returned.append(report_progress(0.5, "half"))
        returned.append(report_progress(1.0, "all"))
        return "ok"

    mission = Mission(
        "g",
        steps=[
            MissionStep("first", "x", executor=lambda t, s, c: 0),
            MissionStep("second", "y", executor=executor),
        ],
    ).run()
    assert returned == [True, True]
    progress = [e for e in mission.audit_log if e["event"] == "progress"]
    assert [(e["step_id"], e["attempt"], e["progress"], e["message"]) for e in progress] == [
        ("second", 1, 0.5, "half"),
        ("second", 1, 1.0, "all"),
    ]


def test_report_progress_carries_the_attempt_number():
    calls = []

    def executor(task, session, context):
        calls.append(1)
        report_progress(1.0, f"attempt {len(calls)}")
        if len(calls) == 1:
            raise RuntimeError("again")
        return "ok"

    mission = Mission("g", steps=[MissionStep("a", "a", executor=executor)], backoff_factor=0).run()
    progress = [(e["attempt"], e["message"]) for e in mission.audit_log if e["event"] == "progress"]
    assert progress == [(1, "attempt 1"), (2, "attempt 2")]


def test_report_progress_works_in_parallel_steps():
    barrier = threading.Barrier(3, timeout=5)

    def executor(task, session, context):
        barrier.wait()  # all three run at once, on their own threads
        assert report_progress(1.0, f"{task} finished")
        return task

    mission = Mission(
        "g",
        steps=[MissionStep(i, i, executor=executor, parallel=True) for i in ("p", "q", "r")],
    ).run()
    assert mission.status == "succeeded"
    progress = {e["step_id"]: e for e in mission.audit_log if e["event"] == "progress"}
    assert set(progress) == {"p", "q", "r"}
    for step_id, event in progress.items():
        assert event["message"] == f"{step_id} finished"
        assert event["attempt"] == 1


def test_report_progress_clamps_and_checks_its_argument():
    outcomes = {}

    def executor(task, session, context):
        report_progress(7)
        outcomes["clamped"] = holder["mission"].get_step("a").progress
        for bad in ("lots", float("nan")):
            try:
                report_progress(bad)
            except (TypeError, ValueError) as exc:
                outcomes[repr(bad)] = type(exc)
        return "ok"

    holder = {}
    mission = Mission("g", steps=[MissionStep("a", "a", executor=executor)])
    holder["mission"] = mission
    mission.run()
    assert outcomes == {"clamped": 1.0, "'lots'": TypeError, "nan": ValueError}


def test_emit_event_inside_an_executor():
    def executor(task, session, context):
        assert emit_event("model_call", tokens=42, model="m")
        return "ok"

    mission = Mission("g", steps=[MissionStep("a", "a", executor=executor)]).run()
    (event,) = [e for e in mission.audit_log if e["event"] == "model_call"]
    assert (event["step_id"], event["attempt"], event["tokens"], event["model"]) == (
        "a",
        1,
        42,
        "m",
    )
    assert set(PUBLIC_FIELDS) <= set(event)


def test_report_progress_and_emit_event_during_planning():
    plan = [{"id": "x", "description": "do x"}]
    seen = {}

    def model(prompt):
        if prompt.startswith(PLAN_PROMPT_HEADER):
            seen["progress"] = report_progress(0.5, "thinking")
            seen["emit"] = emit_event("model_call", tokens=9)
            return json.dumps(plan)
        return "done"

    mission = Mission("g", model=model).run()
    assert mission.status == "succeeded", mission.error
    assert seen["emit"] is True
    (call,) = [e for e in mission.audit_log if e["event"] == "model_call"]
    assert call["step_id"] is None
    assert call["tokens"] == 9
