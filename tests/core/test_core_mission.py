"""Mission: state machine, planning, DAG order, parallel steps, progress, cancel, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import pytest

from mission_widgets import (
    Mission,
    MissionStep,
    MissionValidationError,
    ModelResolutionError,
    PlanError,
    SharedSession,
    StallPolicy,
)
from mission_widgets.core.planning import PLAN_PROMPT_HEADER


def ok(value="ok"):
    return lambda task, session, context: value


def planner(plan, executed=None):
    """A callable model: returns ``plan`` to the planner prompt, echoes steps otherwise."""

    def model(prompt):
        if prompt.startswith(PLAN_PROMPT_HEADER):
            return plan
        if executed is not None:
            executed.append(prompt)
        return "model did it"

    return model


PLAN = [
    {"id": "fetch", "description": "fetch the data", "can_parallel": False, "depends_on": []},
    {
        "id": "clean",
        "description": "clean the data",
        "can_parallel": False,
        "depends_on": ["fetch"],
    },
]


# -- identity and defaults -------------------------------------------------------------------


def test_a_new_mission_has_an_id_its_goal_and_pending_defaults():
    mission = Mission("  find owls  ")
    assert re.fullmatch(r"mission_\d{14}_[0-9a-f]+", mission.id)
    assert Mission("x").id != mission.id
    assert mission.goal == "find owls"
    assert mission.steps is None
    assert mission.status == "pending"
    assert isinstance(mission.session, SharedSession)
    assert isinstance(mission.stall_policy, StallPolicy)
    assert mission.audit_log == []
    assert mission.auto_plan is True
    assert mission.default_executor is None
    assert mission.progress == 0.0
    # The list of statuses is pinned once, in test_core_contracts.py.


def test_steps_may_be_dicts_with_can_parallel():
    mission = Mission(
        "g",
        steps=[
            {"id": "a", "description": "do a", "can_parallel": True},
            {"id": "b", "description": "do b", "depends_on": ["a"]},
        ],
    )
    a, b = mission.steps
    assert isinstance(a, MissionStep)
    assert a.parallel is True
    assert b.depends_on == ["a"]


# -- state machine -----------------------------------------------------------------------------


def status_trace(mission):
    trace = []
    mission.add_event_sink(lambda event: trace.append((event["event"], mission.status)))
    return trace


def test_auto_planned_mission_goes_pending_planning_running_succeeded():
    mission = Mission("clean data", model=planner(json.dumps(PLAN)), executor=ok())
    trace = status_trace(mission)
    assert mission.run() is mission
    assert mission.status == "succeeded"
    seen = dict(trace)
    assert seen["mission_start"] == "pending"
    assert seen["planner_start"] == "planning"
    assert seen["planner_done"] == "planning"
    assert seen["step_start"] == "running"
    assert seen["mission_done"] == "succeeded"
    assert [s.id for s in mission.steps] == ["fetch", "clean"]
    assert mission.error is None
    assert mission.started_at <= mission.finished_at


def test_planning_tolerates_a_fenced_json_reply():
    reply = "Sure! Here is the plan:\n```json\n" + json.dumps(PLAN) + "\n```\nGood luck."
    mission = Mission("clean data", model=planner(reply), executor=ok()).run()
    assert mission.status == "succeeded"
    assert [s.id for s in mission.steps] == ["fetch", "clean"]
    assert mission.get_step("clean").depends_on == ["fetch"]


def test_planned_steps_without_executor_are_run_by_the_model():
    executed: list[str] = []
    mission = Mission("clean data", model=planner(json.dumps(PLAN), executed)).run()
    assert mission.status == "succeeded"
    assert len(executed) == 2
    assert "fetch the data" in executed[0]
    assert "clean the data" in executed[1]
    assert all(s.result == "model did it" for s in mission.steps)


def test_unparseable_plan_fails_the_mission_with_the_reply_quoted():
    mission = Mission("g", model=planner("I cannot plan that, sorry"), executor=ok()).run()
    assert mission.status == "failed"
    assert "I cannot plan that" in mission.error
    (done,) = [e for e in mission.audit_log if e["event"] == "planner_done"]
    assert done["error_type"] == "plan_error"


def test_mission_with_steps_skips_planning():
    def model(prompt):
        raise AssertionError("must not be asked")

    mission = Mission("g", steps=[MissionStep("a", "do a")], executor=ok(), model=model)
    trace = status_trace(mission)
    mission.run()
    assert mission.status == "succeeded"
    assert "planner_start" not in dict(trace)
    assert "mission_planned" in dict(trace)


def test_step_result_and_status_after_success():
    mission = Mission("g", steps=[MissionStep("a", "do a", executor=ok(41))]).run()
    step = mission.get_step("a")
    assert (step.status, step.result, step.retry_count, step.error_history) == ("done", 41, 0, [])
    with pytest.raises(KeyError, match="'zz'"):
        mission.get_step("zz")


def test_running_a_succeeded_mission_again_does_nothing():
    calls = []
    mission = Mission(
        "g", steps=[MissionStep("a", "do a", executor=lambda t, s, c: calls.append(t))]
    ).run()
    n_events = len(mission.audit_log)
    assert mission.run() is mission
    assert calls == ["do a"]
    assert len(mission.audit_log) == n_events


def test_default_executor_runs_steps_without_their_own():
    seen = []
    mission = Mission(
        "g",
        steps=[MissionStep("a", "do a"), MissionStep("b", "do b", executor=ok("own"))],
        executor=lambda task, session, context: seen.append(task) or "default",
    ).run()
    assert seen == ["do a"]
    assert mission.get_step("a").result == "default"
    assert mission.get_step("b").result == "own"


def test_steps_share_the_session():
    def writer(task, session, context):
        session.set_memory("answer", 42)

    def reader(task, session, context):
        return session.get_memory("answer")

    session = SharedSession()
    mission = Mission(
        "g",
        steps=[MissionStep("w", "write", executor=writer), MissionStep("r", "read", reader, 0)],
        session=session,
    ).run()
    assert mission.session is session
    assert mission.get_step("r").result == 42


# -- DAG order and parallelism ---------------------------------------------------------------


def test_steps_run_in_dependency_order_not_list_order():
    order = []

    def record(task, session, context):
        order.append(task)
        return task

    mission = Mission(
        "g",
        steps=[
            MissionStep("d", "d", depends_on=["b", "c"]),
            MissionStep("c", "c", depends_on=["a"]),
            MissionStep("b", "b", depends_on=["a"]),
            MissionStep("a", "a"),
        ],
        executor=record,
    ).run()
    assert mission.status == "succeeded"
    assert order[0] == "a"
    assert order[-1] == "d"
    assert sorted(order[1:3]) == ["b", "c"]


def test_dependency_results_reach_the_executor_context():
    contexts = {}

    def record(task, session, context):
        contexts[task] = context
        return f"result of {task}"

    Mission(
        "g",
        steps=[
            MissionStep("a", "a"),
            MissionStep("b", "b"),
            MissionStep("c", "c", depends_on=["a", "b"]),
        ],
        executor=record,
    ).run()
    assert contexts["a"] is None
    assert "result of a" in contexts["c"]
    assert "result of b" in contexts["c"]


def test_parallel_steps_really_overlap():
    barrier = threading.Barrier(2, timeout=5)
    threads = {}

    def meet(task, session, context):
        threads[task] = threading.get_ident()
        barrier.wait()  # BrokenBarrierError after 5 s if the other step is not running too
        return task

    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=meet, parallel=True, max_retries=0),
            MissionStep("b", "b", executor=meet, parallel=True, max_retries=0),
            MissionStep("c", "c", executor=ok(), depends_on=["a", "b"]),
        ],
        stall_policy={"on_max_retries": "abort"},
    ).run()
    assert mission.status == "succeeded", mission.error
    assert threads["a"] != threads["b"]
    assert [s.status for s in mission.steps] == ["done", "done", "done"]


def test_sequential_step_never_overlaps_a_parallel_one():
    running: set[str] = set()
    seen_running = {}
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=5)

    def parallel(task, session, context):
        with lock:
            running.add(task)
        barrier.wait()  # both parallel steps are running at this point
        with lock:
            running.discard(task)

    def sequential(task, session, context):
        with lock:
            seen_running[task] = set(running)

    mission = Mission(
        "g",
        steps=[
            MissionStep("p1", "p1", executor=parallel, parallel=True),
            MissionStep("s", "s", executor=sequential),
            MissionStep("p2", "p2", executor=parallel, parallel=True),
        ],
    ).run()
    assert mission.status == "succeeded"
    assert seen_running == {"s": set()}


# -- progress and summary --------------------------------------------------------------------


def test_progress_counts_finished_steps_and_reported_progress():
    from mission_widgets import report_progress

    holder = {}
    seen = {}

    def second(task, session, context):
        mission = holder["mission"]
        seen["before"] = mission.progress
        report_progress(0.5, "half way")
        seen["after"] = mission.progress
        return "ok"

    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=ok()),
            MissionStep("b", "b", executor=second),
            MissionStep("c", "c", executor=ok()),
            MissionStep("d", "d", executor=ok()),
        ],
    )
    holder["mission"] = mission
    values = []
    mission.add_event_sink(lambda event: values.append(mission.progress))
    assert mission.progress == 0.0
    mission.run()
    assert seen == {"before": 0.25, "after": 0.375}
    assert all(0.0 <= v <= 1.0 for v in values)
    assert mission.progress == 1.0


def test_step_counts_counts_steps_by_status():
    def fail(task, session, context):
        raise RuntimeError("nope")

    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=ok()),
            MissionStep("b", "b", executor=fail, max_retries=1),
            MissionStep("c", "c", executor=ok(), depends_on=["b"]),
        ],
        stall_policy={"on_max_retries": "skip"},
        backoff_factor=0,
    )
    before = mission.step_counts()
    assert before["total"] == 3
    assert before["pending"] == 3
    assert before["done"] == 0
    mission.run()
    summary = mission.step_counts()
    assert summary["mission_id"] == mission.id
    assert summary["status"] == "succeeded"
    assert (summary["total"], summary["done"], summary["failed"]) == (3, 2, 0)
    assert summary["pending"] == summary["running"] == summary["retrying"] == 0
    assert summary["skipped"] == 1
    assert summary["retries"] == 1
    assert summary["progress"] == 1.0


def test_step_counts_of_an_unplanned_mission():
    summary = Mission("g").step_counts()
    assert summary["total"] == 0
    assert summary["progress"] == 0.0
    assert Mission("g").step_summary() == {}


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_before_run_runs_no_step():
    calls = []
    mission = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: calls.append(t))])
    mission.request_cancel()
    mission.run()
    assert mission.status == "cancelled"
    assert calls == []
    assert mission.audit_log[-1]["event"] == "mission_done"
    assert mission.audit_log[-1]["status"] == "cancelled"


def test_cancel_during_a_step_lets_it_finish_and_starts_no_other():
    holder = {}
    calls = []

    def first(task, session, context):
        calls.append(task)
        holder["mission"].request_cancel()
        return "finished anyway"

    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=first),
            MissionStep("b", "b", executor=lambda t, s, c: calls.append(t)),
        ],
    )
    holder["mission"] = mission
    mission.run()
    assert mission.status == "cancelled"
    assert calls == ["a"]
    assert mission.get_step("a").status == "done"
    assert mission.get_step("b").status == "pending"


def test_cancel_interrupts_the_wait_between_retries():
    holder = {}

    def fail(task, session, context):
        raise RuntimeError("flaky")

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=fail, max_retries=3)],
        hooks={"on_retry_start": lambda step, attempt, error: holder["m"].request_cancel()},
        backoff_factor=100,  # a 100 s wait, unless cancel cuts it short
    )
    holder["m"] = mission
    started = time.monotonic()
    mission.run()
    assert time.monotonic() - started < 10
    assert mission.status == "cancelled"
    assert len(mission.get_step("a").error_history) == 1


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("goal", ["", "   ", None, 42, ["goal"]])
def test_goal_must_be_a_non_empty_string(goal):
    with pytest.raises(MissionValidationError, match="goal"):
        Mission(goal)


def test_duplicate_step_ids_are_named():
    with pytest.raises(MissionValidationError, match="duplicate step id 'a'"):
        Mission("g", steps=[MissionStep("a", "x"), MissionStep("a", "y")])


def test_unknown_dependency_is_named():
    with pytest.raises(MissionValidationError, match="'b' depends on unknown step 'ghost'"):
        Mission("g", steps=[MissionStep("a", "x"), MissionStep("b", "y", depends_on=["ghost"])])


def test_self_dependency_is_named():
    with pytest.raises(MissionValidationError, match="'a' depends on itself"):
        Mission("g", steps=[MissionStep("a", "x", depends_on=["a"])])


def test_cycle_is_named():
    steps = [
        MissionStep("a", "x", depends_on=["c"]),
        MissionStep("b", "y", depends_on=["a"]),
        MissionStep("c", "z", depends_on=["b"]),
    ]
    with pytest.raises(MissionValidationError, match="cycle") as info:
        Mission("g", steps=steps)
    path = re.search(r"cycle: (.*)", str(info.value)).group(1).split(" -> ")
    assert path[0] == path[-1]
    assert set(path) == {"a", "b", "c"}


def test_negative_max_retries_in_a_dict_step_is_named():
    with pytest.raises(MissionValidationError, match="'a'.*max_retries"):
        Mission("g", steps=[{"id": "a", "description": "x", "max_retries": -1}])


def test_unknown_step_field_is_named():
    with pytest.raises(MissionValidationError, match="step #1.*colour"):
        Mission("g", steps=[{"id": "a", "description": "x", "colour": "red"}])


def test_step_of_a_wrong_type_is_named():
    with pytest.raises(MissionValidationError, match="step #2.*str"):
        Mission("g", steps=[MissionStep("a", "x"), "b"])


def test_non_callable_executor_is_refused():
    with pytest.raises(MissionValidationError, match="executor.*int"):
        Mission("g", executor=42)


def test_session_must_be_a_shared_session():
    with pytest.raises(MissionValidationError, match="session.*dict"):
        Mission("g", session={})


@pytest.mark.parametrize("factor", [-1, "fast"])
def test_backoff_factor_must_be_a_non_negative_number(factor):
    with pytest.raises(MissionValidationError, match="backoff_factor"):
        Mission("g", backoff_factor=factor)


def test_unknown_policy_value_is_named():
    with pytest.raises(MissionValidationError, match="on_max_retries.*'explode'"):
        Mission("g", stall_policy={"on_max_retries": "explode"})


def test_unknown_hook_is_named():
    with pytest.raises(TypeError, match="on_step_strat"):
        Mission("g", hooks={"on_step_strat": print})


def test_model_of_a_wrong_type_is_refused():
    with pytest.raises(ModelResolutionError, match="int"):
        Mission("g", model=42)


def test_no_steps_and_no_auto_plan_raises_at_run():
    mission = Mission("g", auto_plan=False, model=lambda p: "[]")
    with pytest.raises(MissionValidationError, match="auto_plan=False"):
        mission.run()


def test_planning_without_a_model_raises_before_anything_runs():
    mission = Mission("plan me")
    with pytest.raises(ModelResolutionError, match="needs a model to plan"):
        mission.run()
    assert mission.status == "pending"
    assert mission.audit_log == []


def test_step_without_executor_or_model_raises_naming_the_step():
    mission = Mission("g", steps=[MissionStep("a", "x", executor=ok()), MissionStep("b", "y")])
    with pytest.raises(ModelResolutionError, match="'b'"):
        mission.run()
    assert mission.get_step("a").status == "pending"


def test_model_given_to_run_is_used():
    mission = Mission("g", steps=[MissionStep("a", "x")])
    mission.run(model=lambda prompt: "from run's model")
    assert mission.status == "succeeded"
    assert mission.get_step("a").result == "from run's model"


def test_core_imports_no_runtime_widgets_or_pandas():
    code = (
        "import sys, mission_widgets.core\n"
        "heavy = ('pandas', 'ipywidgets', 'IPython', 'mission_widgets.runtime',"
        " 'mission_widgets.widgets', 'mission_widgets.orchestrator')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_plan_error_is_a_value_error():
    assert issubclass(PlanError, ValueError)
    assert issubclass(MissionValidationError, ValueError)


def test_the_result_of_a_mission_is_its_last_step_or_the_marked_one():
    from mission_widgets.core.errors import MissionValidationError

    def answer(task, session, context):
        return f"answer to {task}"

    two = [MissionStep("a", "first", executor=answer), MissionStep("b", "second", executor=answer)]
    mission = Mission("g", steps=two)
    assert mission.result is None  # nothing ran yet
    mission.run()
    assert mission.result == "answer to second"
    assert mission.result_preview() == "answer to second"
    marked = Mission("g", steps=[MissionStep("a", "first", executor=answer)], result_step="a").run()
    assert marked.result == "answer to first"
    with pytest.raises(MissionValidationError, match="result_step"):
        Mission("g", steps=[MissionStep("a", "first", executor=answer)], result_step="zz")


def test_a_failure_keeps_its_traceback_bounded_with_its_line_breaks():
    from mission_widgets.core.runner import TRACEBACK_CHARS

    def deep(task, session, context):
        raise ValueError("line one\n" + "y" * 6000 + "\nline two")

    mission = Mission(
        "g",
        steps=[MissionStep("a", "fails", executor=deep, max_retries=0)],
        stall_policy={"on_max_retries": "abort"},
    ).run()
    [entry] = mission.steps[0].error_history
    trace = entry["traceback"]
    assert trace.startswith("\u2026") and len(trace) == TRACEBACK_CHARS + 1
    assert trace.rstrip().endswith("y\nline two")
    short = Mission(
        "g",
        steps=[MissionStep("a", "fails", executor=fails_plainly, max_retries=0)],
        stall_policy={"on_max_retries": "abort"},
    ).run()
    whole = short.steps[0].error_history[0]["traceback"]
    assert whole.startswith("Traceback (most recent call last):")
    assert "in fails_plainly" in whole and whole.rstrip().endswith("ValueError: one\ntwo")
    [event] = [e for e in mission.audit_log if e["event"] == "step_failure"]
    assert event["traceback"] == trace


def fails_plainly(task, session, context):
    raise ValueError("one\ntwo")
