"""apply_event: a mirror fed a finished mission's audit log ends in the same state."""

from __future__ import annotations

import json

import pytest

from mission_widgets import Mission, MissionStep, Resolve
from mission_widgets.core import apply_event
from mission_widgets.core.planning import PLAN_PROMPT_HEADER


def flaky(n_failures, error=RuntimeError):
    calls = []

    def executor(task, session, context):
        calls.append(task)
        if len(calls) <= n_failures:
            raise error(f"{task} failure {len(calls)}")
        return f"{task} done"

    return executor


def mirror_of(mission: Mission) -> Mission:
    mirror = Mission(mission.goal)
    for event in mission.audit_log:
        apply_event(mirror, event)
    return mirror


def assert_same_state(mirror: Mission, mission: Mission) -> None:
    assert mirror.status == mission.status
    assert mirror.error == mission.error
    assert [s.id for s in mirror.steps] == [s.id for s in mission.steps]
    for mine, theirs in zip(mirror.steps, mission.steps):
        assert mine.status == theirs.status, mine.id
        assert mine.skipped == theirs.skipped, mine.id
        assert mine.retry_count == theirs.retry_count, mine.id
        assert mine.depends_on == theirs.depends_on, mine.id
        assert mine.parallel == theirs.parallel, mine.id
        assert mine.error_history == theirs.error_history, mine.id
        if theirs.status == "done":
            assert mine.result == theirs.result, mine.id
            assert mine.progress == 1.0
    assert mirror.audit_log == mission.audit_log
    assert mirror.step_counts()["done"] == mission.step_counts()["done"]


def test_replay_of_a_mission_with_retries_and_a_skipped_step():
    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=flaky(1)),
            MissionStep("b", "b", executor=flaky(9, PermissionError), max_retries=1),
            MissionStep("c", "c", executor=flaky(0), parallel=True, depends_on=["a"]),
            MissionStep("d", "d", executor=flaky(2, TimeoutError), parallel=True, depends_on="a"),
        ],
        stall_policy={"on_max_retries": "skip"},
        backoff_factor=0,
    ).run()
    assert mission.status == "succeeded"
    assert mission.get_step("b").skipped
    assert_same_state(mirror_of(mission), mission)


def test_replay_of_a_stalled_mission():
    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=flaky(0)),
            MissionStep("b", "b", executor=flaky(9), max_retries=2, depends_on=["a"]),
            MissionStep("c", "c", executor=flaky(0), depends_on=["b"]),
        ],
        backoff_factor=0,
    ).run()
    assert mission.status == "stalled"
    mirror = mirror_of(mission)
    assert_same_state(mirror, mission)
    assert mirror.error == "step 'b' failed 3 times; no escalate_fn resolved it"
    assert mirror.stall_reason is None  # no health flag: the mission ended


def test_replay_of_an_aborted_mission():
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=flaky(9), max_retries=1)],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "failed"
    assert_same_state(mirror_of(mission), mission)


def test_replay_of_a_planned_mission():
    plan = [
        {"id": "x", "description": "do x", "can_parallel": True},
        {"id": "y", "description": "do y", "can_parallel": True},
        {"id": "z", "description": "do z", "depends_on": ["x", "y"]},
    ]
    replies = iter(["boom"])

    def model(prompt):
        if prompt.startswith(PLAN_PROMPT_HEADER):
            return json.dumps(plan)
        if "do z" in prompt and next(replies, None):
            raise RuntimeError("model hiccup")
        return "model result"

    mission = Mission("g", model=model, backoff_factor=0).run()
    assert mission.status == "succeeded"
    assert mission.get_step("z").retry_count == 1
    assert_same_state(mirror_of(mission), mission)


def test_replay_of_a_cancelled_mission():
    holder = {}

    def cancel(task, session, context):
        holder["m"].request_cancel()
        return "a done"

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=cancel), MissionStep("b", "b", executor=flaky(0))],
    )
    holder["m"] = mission
    mission.run()
    assert mission.status == "cancelled"
    assert_same_state(mirror_of(mission), mission)


def test_replay_of_escalations():
    answers = {"a": "retry", "b": Resolve("HUMAN ANSWER")}
    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=flaky(2), max_retries=1),
            MissionStep("b", "b", executor=flaky(9), max_retries=0, depends_on=["a"]),
        ],
        stall_policy={"escalate_fn": lambda m, s: answers[s.id]},
        backoff_factor=0,
    ).run()
    assert mission.status == "succeeded"
    assert [e["attempt"] for e in mission.get_step("a").error_history] == [1, 2]
    assert mission.get_step("b").result == "HUMAN ANSWER"
    mirror = mirror_of(mission)
    assert mirror.status == "succeeded"
    for mine, theirs in zip(mirror.steps, mission.steps):
        assert (mine.status, mine.result) == (theirs.status, theirs.result)
        assert mine.error_history == theirs.error_history


def test_record_false_leaves_the_log_alone():
    mission = Mission("g", steps=[MissionStep("a", "a", executor=flaky(0))]).run()
    mirror = Mission("g")
    for event in mission.audit_log:
        apply_event(mirror, event, record=False)
    assert mirror.status == "succeeded"
    assert mirror.audit_log == []


@pytest.mark.parametrize("name", ["heartbeat", "model_call", "something_new"])
def test_unknown_and_step_less_events_are_only_logged(name):
    mirror = Mission("g")
    apply_event(mirror, {"event": name, "timestamp": 1.0, "step_id": None})
    assert mirror.status == "pending"
    assert [e["event"] for e in mirror.audit_log] == [name]
