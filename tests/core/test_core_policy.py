"""StallPolicy: validation, on_max_retries (escalate / skip / abort) and on_step_timeout."""

from __future__ import annotations

import pytest

from mission_widgets import Mission, MissionStep, MissionValidationError, Resolve, StallPolicy


def always_fails(message="broken tool"):
    calls = []

    def executor(task, session, context):
        calls.append(task)
        raise RuntimeError(message)

    executor.calls = calls
    return executor


def fails_times(n, result="recovered"):
    calls = []

    def executor(task, session, context):
        calls.append(task)
        if len(calls) <= n:
            raise RuntimeError(f"failure {len(calls)}")
        return result

    executor.calls = calls
    return executor


def record(log):
    def executor(task, session, context):
        log.append((task, context))
        return f"result of {task}"

    return executor


def three_steps(middle, log, **step_kwargs):
    """a -> b (``middle``) -> c, where a and c record their calls into ``log``."""
    return [
        MissionStep("a", "a", executor=record(log)),
        MissionStep("b", "b", executor=middle, depends_on=["a"], **step_kwargs),
        MissionStep("c", "c", executor=record(log), depends_on=["b"]),
    ]


# -- validation ------------------------------------------------------------------------------


def test_defaults():
    policy = StallPolicy()
    assert policy.on_tool_failure == "inject_error_and_retry"
    assert policy.on_step_timeout == "skip_or_replan"
    assert policy.on_max_retries == "escalate"
    assert policy.escalate_fn is None


def test_a_dict_works_like_the_object():
    mission = Mission("g", stall_policy={"on_max_retries": "skip", "on_step_timeout": "abort"})
    assert isinstance(mission.stall_policy, StallPolicy)
    assert mission.stall_policy.on_max_retries == "skip"
    assert mission.stall_policy.on_step_timeout == "abort"
    policy = StallPolicy(on_max_retries="abort")
    assert Mission("g", stall_policy=policy).stall_policy is policy


@pytest.mark.parametrize("field", ["on_tool_failure", "on_step_timeout", "on_max_retries"])
def test_unknown_values_name_the_field(field):
    with pytest.raises(MissionValidationError, match=rf"{field}='nonsense'"):
        StallPolicy(**{field: "nonsense"})
    with pytest.raises(MissionValidationError, match=rf"{field}='nonsense'"):
        Mission("g", stall_policy={field: "nonsense"})


def test_unknown_field_is_named():
    with pytest.raises(MissionValidationError, match="'on_sunday'"):
        Mission("g", stall_policy={"on_sunday": "rest"})


def test_escalate_fn_must_be_callable():
    with pytest.raises(MissionValidationError, match="escalate_fn"):
        StallPolicy(escalate_fn="call a human")


def test_stall_policy_of_a_wrong_type_is_refused():
    with pytest.raises(MissionValidationError, match="stall_policy.*str"):
        Mission("g", stall_policy="skip")


# -- on_max_retries ----------------------------------------------------------------------------


def test_escalate_without_escalate_fn_stalls_the_mission(hook_recorder):
    log = []
    middle = always_fails()
    mission = Mission(
        "g",
        steps=three_steps(middle, log, max_retries=1),
        hooks=hook_recorder.hooks,
        backoff_factor=0,
    ).run()
    assert mission.status == "stalled"
    # The agreed words (aisdk's meaning of stalled); the cause stays in the step's history.
    assert mission.error == "step 'b' failed 2 times; no escalate_fn resolved it"
    assert "broken tool" in mission.get_step("b").last_error
    assert len(middle.calls) == 2
    assert [task for task, _ in log] == ["a"]  # c never ran
    assert mission.get_step("c").status == "pending"
    stalls = [args for name, args in hook_recorder.calls if name == "on_mission_stall"]
    assert stalls == [(mission, mission.get_step("b"))]
    assert [e["event"] for e in mission.audit_log].count("mission_stall") == 1


def test_escalate_fn_is_called_with_mission_and_step():
    seen = []

    def escalate(mission, step):
        seen.append((mission, step, step.status, len(step.error_history)))

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=always_fails(), max_retries=1)],
        stall_policy=StallPolicy(escalate_fn=escalate),
        backoff_factor=0,
    ).run()
    assert seen == [(mission, mission.get_step("a"), "failed", 2)]
    assert mission.status == "stalled"


def test_escalate_fn_returning_retry_runs_the_step_again_with_fresh_retries():
    log = []
    middle = fails_times(2)  # fails both attempts of the first round
    answers = []

    def escalate(mission, step):
        answers.append("retry")
        return "retry"

    mission = Mission(
        "g",
        steps=three_steps(middle, log, max_retries=1),
        stall_policy={"escalate_fn": escalate},
        backoff_factor=0,
    ).run()
    assert answers == ["retry"]
    assert mission.status == "succeeded"
    step = mission.get_step("b")
    assert step.status == "done"
    assert step.result == "recovered"
    assert len(middle.calls) == 3
    assert [e["attempt"] for e in step.error_history] == [1, 2]
    assert [task for task, _ in log] == ["a", "c"]


def test_escalation_is_bounded_by_max_escalations():
    middle = always_fails()
    asked = []
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=middle, max_retries=0)],
        stall_policy={"escalate_fn": lambda m, s: asked.append(1) or "retry"},
        backoff_factor=0,
    ).run()
    assert asked == [1]
    assert len(middle.calls) == 2
    assert mission.status == "stalled"


def test_escalate_fn_returning_skip_skips_the_step():
    log = []
    mission = Mission(
        "g",
        steps=three_steps(always_fails(), log, max_retries=0),
        stall_policy={"escalate_fn": lambda m, s: "skip"},
        backoff_factor=0,
    ).run()
    assert mission.status == "succeeded"
    assert mission.get_step("b").status == "skipped"
    assert mission.get_step("b").skipped is True
    assert [task for task, _ in log] == ["a", "c"]


def test_escalate_fn_returning_abort_fails_the_mission():
    log = []
    mission = Mission(
        "g",
        steps=three_steps(always_fails(), log, max_retries=0),
        stall_policy={"escalate_fn": lambda m, s: "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "failed"
    assert [task for task, _ in log] == ["a"]


def test_escalate_fn_returning_resolve_makes_its_value_the_result():
    log = []
    mission = Mission(
        "g",
        steps=three_steps(always_fails(), log, max_retries=0),
        stall_policy={"escalate_fn": lambda m, s: Resolve("HUMAN ANSWER")},
        backoff_factor=0,
    ).run()
    assert mission.status == "succeeded"
    step = mission.get_step("b")
    assert (step.status, step.result) == ("done", "HUMAN ANSWER")
    (_, context_of_c) = log[1]
    assert "HUMAN ANSWER" in context_of_c


@pytest.mark.parametrize(
    "answer", ["b", "HUMAN ANSWER", "", "stall", "RETRY", 42, ["retry"], {"result": 1}, True]
)
def test_escalate_fn_values_that_are_not_directives_leave_the_step_failed(answer):
    """aisdk ignores escalate_fn's value: returning e.g. the step id resolves nothing."""
    log = []
    mission = Mission(
        "g",
        steps=three_steps(always_fails(), log, max_retries=0),
        stall_policy={"escalate_fn": lambda m, s: answer},
        backoff_factor=0,
    ).run()
    step = mission.get_step("b")
    assert (step.status, step.result) == ("failed", None)
    assert mission.status == "stalled"
    assert [task for task, _ in log] == ["a"]  # c never ran
    assert mission.step_summary() == {"a": "done", "b": "failed", "c": "pending"}
    (escalation,) = [e for e in mission.audit_log if e["event"] == "escalation"]
    assert escalation["directive"] == "stall"


def test_escalate_fn_that_raises_warns_and_stalls():
    def escalate(mission, step):
        raise RuntimeError("pager is down")

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=always_fails(), max_retries=0)],
        stall_policy={"escalate_fn": escalate},
        backoff_factor=0,
    )
    with pytest.warns(RuntimeWarning, match="escalate_fn.*pager is down"):
        mission.run()
    assert mission.status == "stalled"


def test_skip_skips_the_step_and_dependents_still_run():
    log = []
    mission = Mission(
        "g",
        steps=three_steps(always_fails("tool exploded"), log, max_retries=1),
        stall_policy={"on_max_retries": "skip"},
        backoff_factor=0,
    ).run()
    assert mission.status == "succeeded"
    step = mission.get_step("b")
    assert step.status == "skipped"  # never shown as done: it failed and was left out
    assert step.skipped is True
    assert mission.step_counts()["skipped"] == 1 and mission.step_counts()["failed"] == 0
    assert [task for task, _ in log] == ["a", "c"]
    (_, context_of_c) = log[1]
    assert "tool exploded" in context_of_c
    assert "'b'" in mission.error
    assert any(e["event"] == "step_skipped" and e["step_id"] == "b" for e in mission.audit_log)


def test_abort_fails_the_mission_at_once():
    log = []
    middle = always_fails()
    mission = Mission(
        "g",
        steps=three_steps(middle, log, max_retries=2),
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "failed"
    assert "'b'" in mission.error
    assert len(middle.calls) == 3
    assert [task for task, _ in log] == ["a"]
    assert mission.get_step("c").status == "pending"


def test_abort_in_a_parallel_step_starts_nothing_after_it():
    log = []
    mission = Mission(
        "g",
        steps=[
            MissionStep("p", "p", executor=always_fails(), parallel=True, max_retries=0),
            MissionStep("q", "q", executor=record(log), parallel=True),
            MissionStep("z", "z", executor=record(log), depends_on=["q"]),
        ],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "failed"
    assert "z" not in [task for task, _ in log]


# -- on_step_timeout ---------------------------------------------------------------------------


def hang_until(release):
    calls = []

    def executor(task, session, context):
        calls.append(context)
        release.wait(30)
        return "too late"

    executor.calls = calls
    return executor


def timeout_mission(policy, executor, max_retries=1):
    log = []
    mission = Mission(
        "g",
        steps=three_steps(executor, log, max_retries=max_retries, timeout_secs=0.2),
        stall_policy=policy,
        backoff_factor=0,
    )
    return mission.run(), log


def test_timeout_skip_or_replan_retries_with_the_timeout_then_skips(release):
    executor = hang_until(release)
    mission, log = timeout_mission({"on_step_timeout": "skip_or_replan"}, executor)
    assert len(executor.calls) == 2
    assert "timed out" in executor.calls[1]
    step = mission.get_step("b")
    assert (step.status, step.skipped) == ("skipped", True)
    assert [e["error_type"] for e in step.error_history] == ["timeout", "timeout"]
    assert mission.status == "succeeded"  # not escalated, although on_max_retries=escalate
    assert [task for task, _ in log] == ["a", "c"]


def test_timeout_retry_treats_a_timeout_like_any_failure(release):
    executor = hang_until(release)
    mission, log = timeout_mission({"on_step_timeout": "retry"}, executor)
    assert len(executor.calls) == 2
    assert mission.status == "stalled"  # on_max_retries=escalate, no escalate_fn
    assert [task for task, _ in log] == ["a"]


def test_timeout_skip_skips_at_the_first_timeout(release):
    executor = hang_until(release)
    mission, log = timeout_mission({"on_step_timeout": "skip"}, executor, max_retries=3)
    assert len(executor.calls) == 1
    assert mission.status == "succeeded"
    assert mission.get_step("b").skipped is True
    assert [task for task, _ in log] == ["a", "c"]


def test_timeout_abort_fails_the_mission_at_the_first_timeout(release):
    executor = hang_until(release)
    mission, log = timeout_mission({"on_step_timeout": "abort"}, executor, max_retries=3)
    assert len(executor.calls) == 1
    assert mission.status == "failed"
    assert "timed out" in mission.error
    assert [task for task, _ in log] == ["a"]


def test_timeout_policy_does_not_apply_to_other_errors():
    middle = fails_times(1)
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=middle, max_retries=1, timeout_secs=5)],
        stall_policy={"on_step_timeout": "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "succeeded"
    assert len(middle.calls) == 2
