"""StallPolicy(on_max_retries="ask"): the mission waits for a person's decision."""

from __future__ import annotations

import threading

import pytest
from support.waiting import wait_for, wait_until_waiting

from mission_widgets import Mission, MissionStep, MissionValidationError, StallPolicy
from mission_widgets.core.decisions import read_answer


class Person:
    """A decision source the test answers through (thread-safe)."""

    def __init__(self):
        self.answer = None
        self.asked = []
        self.lock = threading.Lock()

    def __call__(self, step):
        with self.lock:
            self.asked.append(step.id)
            answer, self.answer = self.answer, None
            return answer

    def say(self, answer):
        with self.lock:
            self.answer = answer


def failing_then(result_after: int):
    calls = []

    def executor(task, session, context):
        calls.append(context or "")
        if len(calls) <= result_after:
            raise RuntimeError(f"tool broke #{len(calls)}")
        return "fixed"

    executor.calls = calls
    return executor


def asking_mission(executor, person, **policy):
    return Mission(
        "g",
        steps=[
            MissionStep("fetch", "fetch data", executor=executor, max_retries=1),
            MissionStep("report", "report", executor=lambda t, s, c: "report", depends_on="fetch"),
        ],
        stall_policy=StallPolicy(on_max_retries="ask", **policy),
        decision_source=person,
        backoff_factor=0,
    )


def start(mission):
    thread = threading.Thread(target=mission.run, daemon=True)
    thread.start()
    return thread


def names(mission):
    return [e["event"] for e in mission.audit_log]


def test_the_mission_waits_not_finished_then_retry_with_the_explanation():
    person = Person()
    executor = failing_then(2)
    mission = asking_mission(executor, person)
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    assert mission.status == "waiting"
    assert not mission.is_finished
    assert mission.stall_reason is None  # waiting for a person is not a stall
    waiting = next(e for e in mission.audit_log if e["event"] == "mission_waiting")
    assert (waiting["step_id"], waiting["waiting_on"]) == ("fetch", "fetch")
    assert "fetch" in waiting["reason"]
    assert "mission_done" not in names(mission)
    wait_for(lambda: len(person.asked) >= 2, 5, "the source is polled")
    person.say({"action": "retry", "explanation": "the API key was rotated; use the new one"})
    thread.join(10)
    assert mission.status == "succeeded"
    assert mission.waiting_on is None
    assert len(executor.calls) == 3  # two attempts, then exactly one more
    assert "[AGENT ANALYSIS] the API key was rotated" in executor.calls[2]
    assert "tool broke #1" in executor.calls[2] and "tool broke #2" in executor.calls[2]
    decided = next(e for e in mission.audit_log if e["event"] == "escalation_retry")
    assert decided["decided_by"] == "person"
    assert decided["explanation"].startswith("the API key")
    assert names(mission).index("mission_resumed") > names(mission).index("escalation_retry")


def test_retry_that_fails_again_asks_again():
    person = Person()
    executor = failing_then(99)
    mission = asking_mission(executor, person)
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    person.say("retry")
    wait_for(lambda: names(mission).count("mission_waiting") == 2, 10, "asked again")
    assert len(executor.calls) == 3
    person.say("abort")
    thread.join(10)
    assert mission.status == "failed"


def test_skip_marks_the_step_skipped_and_later_steps_run():
    person = Person()
    mission = asking_mission(failing_then(99), person)
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    person.say("skip")
    thread.join(10)
    assert mission.status == "succeeded"
    fetch, report = mission.steps
    assert (fetch.status, fetch.result) == ("skipped", "[SKIPPED: user decision]")
    assert mission.step_counts()["skipped"] == 1 and mission.step_counts()["done"] == 1
    assert report.result == "report"
    assert "escalation_skip" in names(mission)
    assert mission.progress == 1.0


def test_abort_fails_the_mission():
    person = Person()
    mission = asking_mission(failing_then(99), person)
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    person.say("ABORT")
    thread.join(10)
    assert mission.status == "failed"
    assert "fetch" in mission.error and "decided by a person" in mission.error
    assert mission.steps[1].status == "pending"
    aborted = next(e for e in mission.audit_log if e["event"] == "escalation_abort")
    assert aborted["decided_by"] == "person"
    assert names(mission).count("mission_done") == 1


@pytest.mark.parametrize(("fallback", "status"), [("abort", "failed"), ("skip", "succeeded")])
def test_no_decision_in_time_applies_the_fallback_with_a_reason(fallback, status):
    mission = asking_mission(
        failing_then(99), Person(), decision_timeout_secs=0.3, decision_fallback=fallback
    )
    mission.run()
    assert mission.status == status
    decided = next(e for e in mission.audit_log if e["event"] == f"escalation_{fallback}")
    assert decided["decided_by"] == "timeout"
    assert "no decision within 0.3 s" in decided["reason"]
    assert fallback in decided["reason"]


def test_cancel_while_waiting():
    mission = asking_mission(failing_then(99), Person())
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    mission.request_cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert mission.status == "cancelled"
    assert names(mission).count("mission_done") == 1


def test_unknown_answers_are_refused_and_it_keeps_waiting():
    person = Person()
    mission = asking_mission(failing_then(99), person)
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    person.say("maybe")
    wait_for(lambda: "decision_refused" in names(mission), 5, "the refusal")
    refused = next(e for e in mission.audit_log if e["event"] == "decision_refused")
    assert "retry, skip, abort" in refused["error_message"]
    assert mission.waiting_on == "fetch"
    person.say("skip")
    thread.join(10)
    assert mission.status == "succeeded"


def test_without_a_decision_source_it_stalls_with_a_clear_message():
    mission = asking_mission(failing_then(99), None)
    mission.run()
    assert mission.status == "stalled"
    assert mission.error.startswith("step 'fetch' failed 2 times; ")
    assert "no decision_source" in mission.error and "orch.decide()" in mission.error
    stall = next(e for e in mission.audit_log if e["event"] == "mission_stall")
    assert stall["error_message"] == mission.error
    assert "mission_waiting" not in names(mission)


def test_hooks_see_the_stall_and_the_end():
    seen = []
    person = Person()
    person.say("skip")
    mission = asking_mission(failing_then(99), person)
    mission.hooks.on_mission_done = lambda m: seen.append(m.status)
    mission.run()
    assert seen == ["succeeded"]


def test_policy_validation_and_answers():
    with pytest.raises(MissionValidationError, match="decision_fallback"):
        StallPolicy(on_max_retries="ask", decision_fallback="pray")
    with pytest.raises(MissionValidationError, match="decision_timeout_secs"):
        StallPolicy(on_max_retries="ask", decision_timeout_secs=-1)
    assert (
        StallPolicy.coerce({"on_max_retries": "ask", "decision_timeout_secs": 5}).to_dict()[
            "decision_timeout_secs"
        ]
        == 5
    )
    assert read_answer(" Retry ") == ("retry", None)
    assert read_answer({"action": "skip", "explanation": " why "}) == ("skip", "why")
    assert read_answer(None) == (None, None)
    with pytest.raises(MissionValidationError, match="decision_source"):
        Mission("g", decision_source="yes")


def test_the_mirror_follows_waiting_and_resuming():
    from mission_widgets.core import apply_event

    person = Person()
    mission = asking_mission(failing_then(2), person)
    thread = start(mission)
    assert wait_until_waiting(mission) == "fetch"
    mirror = Mission("g")
    for event in list(mission.audit_log):
        apply_event(mirror, event)
    assert (mirror.status, mirror.waiting_on) == ("waiting", "fetch")
    assert not mirror.is_finished
    person.say("retry")
    thread.join(10)
    for event in mission.audit_log[len(mirror.audit_log) :]:
        apply_event(mirror, event)
    assert (mirror.status, mirror.waiting_on, mirror.stall_reason) == ("succeeded", None, None)
