"""MissionStep: validation, one attempt per run(), the two executor shapes, model execution."""

from __future__ import annotations

import math

import pytest

from mission_widgets import (
    Mission,
    MissionStep,
    MissionValidationError,
    ModelResolutionError,
    SharedSession,
)
from mission_widgets.core.planning import PLAN_PROMPT_HEADER


def test_a_new_step_has_the_documented_defaults():
    step = MissionStep("a", "do a")
    assert (step.id, step.description, step.executor) == ("a", "do a", None)
    assert step.status == "pending"
    assert step.max_retries == 2
    assert step.retry_count == 0
    assert step.timeout_secs is None
    assert step.parallel is False
    assert step.depends_on == []
    assert step.result is None
    assert step.error_history == []


def test_depends_on_accepts_a_single_id():
    assert MissionStep("b", "do b", depends_on="a").depends_on == ["a"]


def test_run_is_one_attempt_of_a_callable_executor():
    calls = []

    def executor(task, session, context):
        calls.append((task, session, context))
        return f"did {task}"

    session = SharedSession()
    step = MissionStep("a", "do a", executor=executor)
    assert step.run(session, None, "ctx") == "did do a"
    assert calls == [("do a", session, "ctx")]
    # run() is a bare attempt: the mission owns status, retries and history.
    assert step.status == "pending"
    assert step.retry_count == 0


def test_run_raises_what_the_executor_raises_and_records_nothing():
    def executor(task, session, context):
        raise KeyError("boom")

    step = MissionStep("a", "do a", executor=executor)
    with pytest.raises(KeyError, match="boom"):
        step.run(SharedSession())
    assert step.error_history == []


def test_object_executor_with_run_method_gets_session_model_and_context_in_task():
    class Agent:
        def __init__(self):
            self.calls = []

        def run(self, task, session=None, model=None):
            self.calls.append((task, session, model))
            return "agent result"

    agent = Agent()
    session, model = SharedSession(), object()
    step = MissionStep("a", "do a", executor=agent)
    assert step.run(session, model, "EARLIER RESULTS") == "agent result"
    ((task, got_session, got_model),) = agent.calls
    assert task.startswith("do a")
    assert "EARLIER RESULTS" in task
    assert got_session is session
    assert got_model is model


def test_callable_object_that_also_has_run_is_called_as_agent():
    class Both:
        def __init__(self):
            self.via = None

        def __call__(self, task, session, context):
            self.via = "call"
            return "call"

        def run(self, task, session=None, model=None):
            self.via = "run"
            return "run"

    both = Both()
    assert MissionStep("a", "do a", executor=both).run(SharedSession()) == "run"
    assert both.via == "run"


def test_function_with_a_run_attribute_is_still_called_as_a_function():
    def tool(task, session, context):
        return ("function", task, context)

    tool.run = lambda task, session=None, model=None: ("attribute", task)
    step = MissionStep("a", "do a", executor=tool)
    assert step.run(SharedSession(), None, "ctx") == ("function", "do a", "ctx")


def test_step_without_executor_is_executed_by_the_model():
    prompts = []

    def model(prompt):
        prompts.append(prompt)
        return "model says hi"

    step = MissionStep("a", "say hi")
    assert step.run(SharedSession(), model, "SOME CONTEXT", goal="greet") == "model says hi"
    (prompt,) = prompts
    assert "greet" in prompt
    assert "say hi" in prompt
    assert "SOME CONTEXT" in prompt


def test_model_reply_that_is_not_text_becomes_text():
    step = MissionStep("a", "count")
    assert step.run(SharedSession(), lambda prompt: 42) == "42"


def test_step_without_executor_and_model_names_the_step():
    with pytest.raises(ModelResolutionError, match="'lonely'"):
        MissionStep("lonely", "do it").run(SharedSession(), None)


def test_mission_prompt_has_goal_description_dependency_results_and_errors():
    prompts: list[str] = []
    attempts = {"n": 0}

    def model(prompt):
        assert not prompt.startswith(PLAN_PROMPT_HEADER), "steps were given; no planning"
        prompts.append(prompt)
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise RuntimeError("the model was rate limited")
        return "summary written"

    mission = Mission(
        "write a report on owls",
        steps=[
            MissionStep("facts", "collect facts", executor=lambda t, s, c: "OWLS-HOOT-AT-NIGHT"),
            MissionStep("write", "write the summary", depends_on=["facts"]),
        ],
        model=model,
        backoff_factor=0,
    )
    mission.run()
    assert mission.status == "succeeded"
    assert mission.get_step("write").result == "summary written"
    first, second = prompts
    for prompt in prompts:
        assert "write a report on owls" in prompt
        assert "write the summary" in prompt
        assert "OWLS-HOOT-AT-NIGHT" in prompt
    assert "PREVIOUS ATTEMPT(S) FAILED" not in first
    assert "PREVIOUS ATTEMPT(S) FAILED" in second
    assert "the model was rate limited" in second


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"id": "", "description": "d"}, "step id"),
        ({"id": 7, "description": "d"}, "step id"),
        ({"id": "a", "description": ""}, "'a'.*description"),
        ({"id": "a", "description": "d", "max_retries": -1}, "'a'.*max_retries.*-1"),
        ({"id": "a", "description": "d", "max_retries": 1.5}, "'a'.*max_retries"),
        ({"id": "a", "description": "d", "max_retries": True}, "'a'.*max_retries"),
        ({"id": "a", "description": "d", "timeout_secs": 0}, "'a'.*timeout_secs"),
        ({"id": "a", "description": "d", "timeout_secs": -2}, "'a'.*timeout_secs"),
        ({"id": "a", "description": "d", "timeout_secs": math.nan}, "'a'.*timeout_secs"),
        ({"id": "a", "description": "d", "executor": 42}, "'a'.*executor.*int"),
        ({"id": "a", "description": "d", "executor": "tool"}, "'a'.*executor.*str"),
        ({"id": "a", "description": "d", "depends_on": [1]}, "'a'.*depends_on"),
    ],
)
def test_bad_step_definitions_name_the_culprit(kwargs, match):
    with pytest.raises(MissionValidationError, match=match):
        MissionStep(**kwargs)
