"""MissionHooks: signatures, order for success / retry / failure, and hooks that raise."""

from __future__ import annotations

import inspect
import json

import pytest

from mission_widgets import Mission, MissionHooks, MissionStep
from mission_widgets.core import HOOK_SIGNATURES
from mission_widgets.core.planning import PLAN_PROMPT_HEADER

#: The public hooks with their parameters, written out here: renaming one, or one of its
#: parameters, breaks the code of every user who passes it.
PUBLIC_HOOKS = {
    "on_mission_start": ("mission",),
    "on_planner_start": ("mission",),
    "on_planner_done": ("mission", "steps"),
    "on_mission_planned": ("mission",),
    "on_step_start": ("step", "attempt"),
    "on_retry_start": ("step", "attempt", "error"),
    "on_retry_success": ("step", "result", "attempt"),
    "on_step_success": ("step", "result", "attempt"),
    "on_step_done": ("step", "result"),
    "on_step_failure": ("step", "error", "attempt"),
    "on_step_failed": ("step", "error", "attempt"),
    "on_mission_stall": ("mission", "step"),
    "on_mission_end": ("mission",),
    "on_mission_done": ("mission",),
}


def test_hook_names_and_signatures_are_the_public_ones():
    assert HOOK_SIGNATURES == PUBLIC_HOOKS
    params = list(inspect.signature(MissionHooks).parameters)
    assert params == list(PUBLIC_HOOKS)
    hooks = MissionHooks()
    for name in PUBLIC_HOOKS:
        assert getattr(hooks, name) is None
        assert callable(getattr(hooks, "trigger_" + name.removeprefix("on_")))


def test_hooks_must_be_callable():
    with pytest.raises(TypeError, match="on_step_start"):
        MissionHooks(on_step_start="print")


def test_a_dict_of_hooks_works():
    calls = []
    Mission(
        "g",
        steps=[MissionStep("a", "a", executor=lambda t, s, c: "r")],
        hooks={"on_step_done": lambda step, result: calls.append((step.id, result))},
    ).run()
    assert calls == [("a", "r")]


def test_hooks_of_a_successful_planned_mission(hook_recorder):
    plan = [
        {"id": "a", "description": "do a", "depends_on": []},
        {"id": "b", "description": "do b", "depends_on": ["a"]},
    ]

    def model(prompt):
        return json.dumps(plan) if prompt.startswith(PLAN_PROMPT_HEADER) else "unused"

    mission = Mission(
        "g",
        model=model,
        executor=lambda task, session, context: task.upper(),
        hooks=hook_recorder.hooks,
    ).run()
    assert mission.status == "succeeded"
    a, b = mission.steps
    assert hook_recorder.calls == [
        ("on_mission_start", (mission,)),
        ("on_planner_start", (mission,)),
        ("on_planner_done", (mission, mission.steps)),
        ("on_mission_planned", (mission,)),
        ("on_step_start", (a, 1)),
        ("on_step_success", (a, "DO A", 1)),
        ("on_step_done", (a, "DO A")),
        ("on_step_start", (b, 1)),
        ("on_step_success", (b, "DO B", 1)),
        ("on_step_done", (b, "DO B")),
        ("on_mission_end", (mission,)),
        ("on_mission_done", (mission,)),
    ]


def test_hooks_of_a_retry_then_success(hook_recorder):
    error = ConnectionError("flaky network")
    attempts = []

    def executor(task, session, context):
        attempts.append(task)
        if len(attempts) == 1:
            raise error
        return "ok"

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor)],
        hooks=hook_recorder.hooks,
        backoff_factor=0,
    ).run()
    (a,) = mission.steps
    assert hook_recorder.calls == [
        ("on_mission_start", (mission,)),
        ("on_mission_planned", (mission,)),
        ("on_step_start", (a, 1)),
        ("on_step_failure", (a, error, 1)),
        ("on_retry_start", (a, 2, error)),
        ("on_step_start", (a, 2)),
        ("on_step_success", (a, "ok", 2)),
        ("on_retry_success", (a, "ok", 2)),
        ("on_step_done", (a, "ok")),
        ("on_mission_end", (mission,)),
        ("on_mission_done", (mission,)),
    ]


def test_hooks_of_a_failure(hook_recorder):
    errors = [ValueError("first"), ValueError("second")]

    def executor(task, session, context):
        raise errors.pop(0)

    first, second = errors
    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=executor, max_retries=1),
            MissionStep("b", "b", executor=lambda t, s, c: "never", depends_on=["a"]),
        ],
        hooks=hook_recorder.hooks,
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "failed"
    a = mission.get_step("a")
    assert hook_recorder.calls == [
        ("on_mission_start", (mission,)),
        ("on_mission_planned", (mission,)),
        ("on_step_start", (a, 1)),
        ("on_step_failure", (a, first, 1)),
        ("on_retry_start", (a, 2, first)),
        ("on_step_start", (a, 2)),
        ("on_step_failure", (a, second, 2)),
        ("on_step_failed", (a, second, 2)),
        ("on_mission_end", (mission,)),
        ("on_mission_done", (mission,)),
    ]


def test_hooks_of_a_stall(hook_recorder):
    error = ValueError("stuck")

    def executor(task, session, context):
        raise error

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, max_retries=0)],
        hooks=hook_recorder.hooks,
        backoff_factor=0,
    ).run()
    assert mission.status == "stalled"
    a = mission.get_step("a")
    assert hook_recorder.calls[-5:] == [
        ("on_step_failure", (a, error, 1)),
        ("on_step_failed", (a, error, 1)),
        ("on_mission_stall", (mission, a)),
        ("on_mission_end", (mission,)),
        ("on_mission_done", (mission,)),
    ]


def test_mission_end_and_done_fire_on_cancel(hook_recorder):
    mission = Mission(
        "g", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)], hooks=hook_recorder.hooks
    )
    mission.request_cancel()
    mission.run()
    assert mission.status == "cancelled"
    assert hook_recorder.names[-2:] == ["on_mission_end", "on_mission_done"]
    assert "on_step_start" not in hook_recorder.names


def test_hook_sees_the_final_status_at_the_end():
    statuses = []
    Mission(
        "g",
        steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)],
        hooks={"on_mission_done": lambda m: statuses.append((m.status, m.finished_at is not None))},
    ).run()
    assert statuses == [("succeeded", True)]


@pytest.mark.parametrize(
    "hook",
    ["on_mission_start", "on_mission_planned", "on_step_start", "on_step_success", "on_step_done"]
    + ["on_mission_end", "on_mission_done"],
)
def test_a_hook_that_raises_warns_and_the_mission_still_succeeds(hook):
    def bad(*args):
        raise RuntimeError("hook bug")

    mission = Mission(
        "g", steps=[MissionStep("a", "a", executor=lambda t, s, c: "fine")], hooks={hook: bad}
    )
    with pytest.warns(RuntimeWarning, match=rf"{hook}\b.*hook bug"):
        mission.run()
    assert mission.status == "succeeded"
    assert mission.get_step("a").result == "fine"


def test_a_raising_failure_hook_does_not_change_retries():
    attempts = []

    def executor(task, session, context):
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("once")
        return "ok"

    def bad(*args):
        raise KeyError("oops")

    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor)],
        hooks={"on_step_failure": bad, "on_retry_start": bad},
        backoff_factor=0,
    )
    with pytest.warns(RuntimeWarning, match="on_step_failure|on_retry_start") as record:
        mission.run()
    messages = sorted(str(w.message) for w in record)
    assert messages == [
        "mission hook on_retry_start raised KeyError: 'oops'",
        "mission hook on_step_failure raised KeyError: 'oops'",
    ]
    assert mission.status == "succeeded"
    assert len(attempts) == 2


def test_trigger_methods_call_the_hooks():
    calls = []
    hooks = MissionHooks(on_retry_start=lambda *args: calls.append(args))
    hooks.trigger_retry_start("step", 2, "error")
    hooks.trigger_step_start("step", 1)  # not set: nothing happens
    assert calls == [("step", 2, "error")]
