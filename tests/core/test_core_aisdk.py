"""aisdk's tests/testthat/test-mission.R, translated, plus the aisdk semantics users rely on.

Each test names the aisdk test it comes from; R's ``create_step`` / ``create_mission`` are
``MissionStep`` / ``Mission``; ``ChatSession`` is ``SharedSession``.
"""

from __future__ import annotations

import json
import threading

import pytest

from mission_widgets import (
    Mission,
    MissionHooks,
    MissionStep,
    ModelResolutionError,
    SharedSession,
    StallPolicy,
)
from mission_widgets.core.models import register_provider


class EchoModel:
    """A picklable model object (module level) that says which model answered."""

    def __init__(self, name: str) -> None:
        self.name = name

    def generate(self, prompt: str) -> str:
        return f"{self.name} answered"


# -- "MissionStep initializes correctly" ------------------------------------------------------


def test_mission_step_initializes_correctly():
    step = MissionStep("step_1", "Load and inspect data", max_retries=3, parallel=False)
    assert step.id == "step_1"
    assert step.description == "Load and inspect data"
    assert step.status == "pending"
    assert step.max_retries == 3
    assert step.retry_count == 0
    assert step.parallel is False
    assert step.executor is None
    assert step.error_history == []


def test_mission_step_with_function_executor_runs_and_returns_result():
    step = MissionStep("fn_step", "Return hello", executor=lambda t, s, c: "hello from fn")
    assert step.run(session=SharedSession(), model="test:model") == "hello from fn"


def test_mission_step_run_propagates_errors_for_retry_handling():
    def fails(task, session, context):
        raise RuntimeError("intentional failure")

    step = MissionStep("failing_step", "Always fails", executor=fails)
    with pytest.raises(RuntimeError, match="intentional failure"):
        step.run(session=SharedSession(), model="test:model")


def test_mission_step_context_injection_includes_error_history():
    captured = {}

    def executor(task, session, context):
        captured["context"] = context
        return "done"

    step = MissionStep("ctx_step", "Check context", executor=executor)
    context = (
        "PREVIOUS ATTEMPT(S) FAILED. Please approach this differently.\n\n"
        "Attempt 1: timeout error\nAttempt 2: network error"
    )
    step.run(session=SharedSession(), model="test:model", context=context)
    assert "timeout error" in captured["context"]
    assert "network error" in captured["context"]


def test_mission_initializes_with_correct_defaults():
    m = Mission("Test goal", auto_plan=False)
    assert m.id.startswith("mission_")
    assert m.goal == "Test goal"
    assert m.status == "pending"
    assert m.steps is None
    assert m.auto_plan is False


# -- "Mission state machine: step_summary returns correct statuses" ----------------------------


def test_step_summary_returns_the_status_of_each_step_by_id():
    m = Mission(
        "pipeline",
        steps=[
            MissionStep("s1", "Step one", executor=lambda t, s, c: "r1"),
            MissionStep("s2", "Step two", executor=lambda t, s, c: "r2"),
            MissionStep("s3", "Step three", executor=lambda t, s, c: "r3"),
        ],
        auto_plan=False,
    )
    m.steps[0].status = "done"
    m.steps[1].status = "running"
    m.steps[2].status = "pending"
    assert m.step_summary() == {"s1": "done", "s2": "running", "s3": "pending"}
    m.run()
    assert m.step_summary() == {"s1": "done", "s2": "done", "s3": "done"}
    assert m.step_counts()["done"] == 3


# -- "Mission runs successfully with function executors" -----------------------------------


def test_mission_runs_function_executors_in_dependency_order():
    order = []

    def step(name):
        def run(task, session, context):
            order.append(name)
            return f"result_{name}"

        return run

    m = Mission(
        "Three-step pipeline",
        steps=[
            MissionStep("s1", "First step", executor=step("s1")),
            MissionStep("s2", "Second step", executor=step("s2"), depends_on="s1"),
            MissionStep("s3", "Third step", executor=step("s3"), depends_on="s2"),
        ],
        auto_plan=False,
        model="test:model",
    ).run(model="test:model")
    assert m.status == "succeeded"
    assert order == ["s1", "s2", "s3"]
    assert [s.result for s in m.steps] == ["result_s1", "result_s2", "result_s3"]


# -- "Mission retry: execute_step_with_retry retries on failure then succeeds" -----------------


def test_retries_on_failure_then_succeeds():
    attempts = []

    def executor(task, session, context):
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError(f"failure {len(attempts)}")
        return "finally succeeded"

    m = Mission(
        "retry test",
        steps=[MissionStep("retry_step", "Fails twice", executor=executor, max_retries=3)],
        auto_plan=False,
        model="test:model",
        backoff_factor=0,
    ).run()
    step = m.steps[0]
    assert step.status == "done"
    assert step.result == "finally succeeded"
    assert len(attempts) == 3
    assert len(step.error_history) == 2
    events = {name: [e for e in m.audit_log if e["event"] == name] for name in
              ("retry_start", "step_failure", "step_success")}  # fmt: skip
    assert len(events["retry_start"]) == 2
    assert all("attempt" in e for e in events["retry_start"])
    assert len(events["step_failure"]) == 2
    for e in events["step_failure"]:
        assert {"step_id", "attempt", "error_type", "error_message", "duration_ms"} <= set(e)
    assert [e["attempt"] for e in events["step_success"]] == [3]


# -- "Mission retry: escalates after max_retries exceeded" ----------------------------------


def test_escalates_after_max_retries_and_the_step_stays_failed():
    called = []

    def escalate(mission, step):
        called.append(step.id)
        return True  # R's `stall_called <<- TRUE` returns TRUE: not a directive

    def fails(task, session, context):
        raise RuntimeError("permanent failure")

    m = Mission(
        "stall test",
        steps=[MissionStep("always_fails", "Always fails", executor=fails, max_retries=1)],
        auto_plan=False,
        model="test:model",
        stall_policy={"on_max_retries": "escalate", "escalate_fn": escalate},
        backoff_factor=0,
    ).run()
    assert m.steps[0].status == "failed"
    assert called == ["always_fails"]


def test_escalate_fn_returning_the_step_id_does_not_resolve_it():
    """The bug of issue 14: a string that happened to be returned became the result."""
    m = Mission(
        "g",
        steps=[MissionStep("s1", "s1", executor=lambda t, s, c: 1 / 0, max_retries=0)],
        stall_policy={"escalate_fn": lambda mission, step: step.id},
    ).run()
    assert m.step_summary() == {"s1": "failed"}
    assert m.steps[0].result is None
    assert m.status != "succeeded"


# -- "Mission save and resume preserves step state" -------------------------------------------


def test_save_and_resume_preserves_step_state_and_status(tmp_path):
    steps = [
        MissionStep("s1", "First step", executor=lambda t, s, c: "done1"),
        MissionStep("s2", "Second step", executor=lambda t, s, c: "done2"),
    ]
    steps[0].status = "done"
    steps[0].result = "done1"
    m = Mission("save/resume test", steps=steps, auto_plan=False, model="test:model")
    m.status = "running"
    m.save(tmp_path / "m.json")

    m2 = Mission("save/resume test", auto_plan=False, executor=lambda t, s, c: "resumed")
    m2.resume(tmp_path / "m.json")
    assert m2.goal == "save/resume test"
    assert m2.status == "running"  # restored, not reset to pending
    assert len(m2.steps) == 2
    assert (m2.steps[0].status, m2.steps[0].result) == ("done", "done1")
    assert m2.steps[1].status == "pending"
    assert m2.model == "test:model"
    m2.run()
    assert m2.status == "succeeded"
    assert [s.result for s in m2.steps] == ["done1", "resumed"]


@pytest.mark.parametrize("status", ["pending", "running", "failed", "stalled", "cancelled"])
def test_resume_restores_every_saved_status(tmp_path, status):
    m = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)])
    m.status = status
    m.save(tmp_path / "m.json")
    assert Mission.load(tmp_path / "m.json").status == status


# -- "MissionHookHandler triggers correct hooks" / "errors in hooks are caught gracefully" ----


def test_hook_handler_triggers_correct_hooks():
    events, done_results = [], {}
    hooks = MissionHooks(
        on_mission_start=lambda m: events.append("mission_start"),
        on_step_start=lambda s, attempt: events.append(f"step_start:{s.id}"),
        on_step_done=lambda s, result: done_results.__setitem__(s.id, result),
        on_mission_done=lambda m: events.append("mission_done"),
    )
    step = MissionStep("h1", "Hook test step", executor=lambda t, s, c: "hook result")
    m = Mission("hook test", steps=[step], auto_plan=False, hooks=hooks)
    hooks.trigger_mission_start(m)
    hooks.trigger_step_start(step, 1)
    hooks.trigger_step_done(step, "hook result")
    hooks.trigger_mission_done(m)
    assert events == ["mission_start", "step_start:h1", "mission_done"]
    assert done_results == {"h1": "hook result"}


def test_hook_errors_are_caught_gracefully():
    def broken(m):
        raise RuntimeError("hook error!")

    hooks = MissionHooks(on_mission_start=broken)
    with pytest.warns(RuntimeWarning, match="hook error"):
        hooks.trigger_mission_start(Mission("test", auto_plan=False))


# -- "ChatSession checkpoint and restore_checkpoint round-trip" -------------------------------


def test_session_checkpoint_round_trip(tmp_path):
    session = SharedSession(model="test:model")
    session.set_memory("key1", "value1")
    session.set_memory("key2", {"a": 1, "b": 2})
    path = session.checkpoint(tmp_path / "s.json")
    assert path == str(tmp_path / "s.json")
    session2 = SharedSession().restore_checkpoint(path)
    assert session2.get_memory("key1") == "value1"
    assert session2.get_memory("key2") == {"a": 1, "b": 2}


def test_default_stall_policy_structure():
    policy = StallPolicy()
    assert policy.on_tool_failure == "inject_error_and_retry"
    assert policy.on_step_timeout == "skip_or_replan"
    assert policy.on_max_retries == "escalate"
    assert policy.escalate_fn is None


# -- models: what the user gave; objects round-trip; run(model=) wins ------------


def test_mission_model_keeps_a_string():
    m = Mission("g", model="openai:gpt-4o-mini")
    assert m.model == "openai:gpt-4o-mini" and type(m.model) is str


def test_a_picklable_model_object_round_trips(tmp_path):
    m = Mission("g", model=EchoModel("saved"), steps=[MissionStep("a", "do a")])
    m.save(tmp_path / "m.json")
    loaded = Mission.load(tmp_path / "m.json")
    assert isinstance(loaded.model, EchoModel) and loaded.model.name == "saved"
    assert loaded.run().steps[0].result == "saved answered"


def test_an_unpicklable_model_saves_a_clear_placeholder(tmp_path):
    class LockedModel:
        def __init__(self):
            self.lock = threading.Lock()

        def generate(self, prompt):
            return "x"

    m = Mission("g", model=LockedModel())
    with pytest.warns(RuntimeWarning, match="model .* not saved"):
        m.save(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())["model"]
    assert "LockedModel" in saved["unsaved_model"]
    assert "model=" in saved["note"]
    assert Mission.load(tmp_path / "m.json").model is None


def test_run_model_overrides_the_missions_model_for_that_run():
    m = Mission("g", model=EchoModel("mission's"), steps=[MissionStep("a", "do a")])
    m.run(model=EchoModel("run's"))
    assert m.steps[0].result == "run's answered"
    assert m.model.name == "mission's"  # kept
    started = next(e for e in m.audit_log if e["event"] == "mission_start")
    assert started["model"] == "EchoModel"


def test_model_precedence_run_then_mission_then_fallback():
    def make(model=None):
        return Mission("g", model=model, steps=[MissionStep("a", "do a")])

    fallback = EchoModel("orchestrator's")
    assert make().run(fallback_model=fallback).steps[0].result == "orchestrator's answered"
    m = make(EchoModel("mission's")).run(fallback_model=fallback)
    assert m.steps[0].result == "mission's answered"
    m = make(EchoModel("mission's")).run(model=EchoModel("run's"), fallback_model=fallback)
    assert m.steps[0].result == "run's answered"
    with pytest.raises(ModelResolutionError, match="needs a model"):
        make().run()


def test_a_string_model_is_resolved_only_when_needed():
    resolved = []

    def factory(name):
        resolved.append(name)
        return EchoModel(name)

    register_provider("aisdkcounting", factory, replace=True)
    m = Mission(
        "g", model="aisdkcounting:x", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)]
    )
    m.run()
    assert resolved == []  # never needed
    m = Mission("g", model="aisdkcounting:y", steps=[MissionStep("a", "do a")]).run()
    assert resolved == ["y"]
    assert m.steps[0].result == "y answered"


# -- sessions: isolated unless one is given --------------------------------------------------


def test_missions_without_a_session_are_isolated():
    def write(task, session, context):
        session.set_memory("secret", task)
        return "w"

    def read(task, session, context):
        return session.get_memory("secret", "nothing")

    a = Mission("a", steps=[MissionStep("w", "from a", executor=write)]).run()
    b = Mission("b", steps=[MissionStep("r", "read", executor=read)]).run()
    assert a.session is not b.session
    assert b.steps[0].result == "nothing"
    shared = SharedSession()
    Mission("a", steps=[MissionStep("w", "from a", executor=write)], session=shared).run()
    c = Mission("c", steps=[MissionStep("r", "read", executor=read)], session=shared).run()
    assert c.steps[0].result == "from a"
