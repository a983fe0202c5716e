"""Budgets in the engine: checked before each model call, a call that would pass is not made,
the mission aborts (or asks a person) with a reason naming the budget; bad limits are refused
at construction, naming the field."""

from __future__ import annotations

import json
import math

import pytest

from mission_widgets import Budget, Mission, MissionStep
from mission_widgets.core.errors import MissionValidationError
from mission_widgets.core.events import emit_event, guard_model_call
from mission_widgets.core.planning import PLAN_PROMPT_HEADER

PLAN = [{"id": s, "description": f"do {s}", "can_parallel": False, "depends_on": []} for s in "abc"]


class MeteredModel:
    """A provider as OpenAIModel is one: asks the budget, then "calls" (counted) and reports
    ``usage`` tokens per call in a model_call event."""

    def __init__(self, usage=(100, 50), name="house-llm"):
        self.usage, self.name, self.made = usage, name, []

    def generate(self, prompt):
        guard_model_call(self.name, prompt)
        self.made.append(prompt)
        emit_event(
            "model_call",
            model=self.name,
            prompt_tokens=self.usage[0],
            completion_tokens=self.usage[1],
        )
        return json.dumps(PLAN) if prompt.startswith(PLAN_PROMPT_HEADER) else "done"


def events(mission, name):
    return [e for e in mission.audit_log if e["event"] == name]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", -1),
        ("max_tokens", 1.5),
        ("max_tokens", True),
        ("max_cost_usd", math.nan),
        ("max_cost_usd", -0.01),
        ("max_cost_usd", math.inf),
        ("max_cost_usd", "1"),
        ("max_model_calls", -3),
        ("max_model_calls", "2"),
    ],
)
def test_bad_limits_are_refused_at_construction_naming_the_field(field, value):
    with pytest.raises(MissionValidationError, match=field):
        Budget(**{field: value})
    with pytest.raises(MissionValidationError, match=field):
        Mission("g", budget={field: value})


def test_budget_arguments_are_checked_when_the_mission_is_made():
    assert Mission("g", budget={"max_tokens": 10}).budget == Budget(max_tokens=10)
    with pytest.raises(MissionValidationError, match="unknown Budget field"):
        Mission("g", budget={"max_dollars": 1})
    with pytest.raises(MissionValidationError, match="budget must be a Budget"):
        Mission("g", budget=5)
    with pytest.raises(MissionValidationError, match="on_budget must be one of"):
        Mission("g", on_budget="warn")
    assert repr(Budget(max_model_calls=3)) == "Budget(max_model_calls=3)"


def test_a_call_that_would_pass_max_model_calls_is_not_made_and_the_mission_aborts():
    model = MeteredModel()
    mission = Mission("g", model=model, budget=Budget(max_model_calls=2), backoff_factor=0).run()

    assert len(model.made) == 2  # the plan and step a; step b's call was never made
    assert mission.status == "failed"
    assert "budget max_model_calls=2 would be passed: 2 calls made" in mission.error
    [refused] = events(mission, "budget_exceeded")
    assert (refused["budget"], refused["limit"], refused["used"]) == ("max_model_calls", 2, 2)
    assert refused["step_id"] == "b"
    # no retries of a refused call: one failed attempt, then the step fails
    assert [e["attempt"] for e in events(mission, "step_failure")] == [1]
    assert events(mission, "step_failure")[0]["error_type"] == "budget_exceeded"
    assert mission.usage.calls == 2 and mission.usage.tokens == 300


def test_max_tokens_counts_used_tokens_and_the_next_prompt():
    model = MeteredModel(usage=(100, 50))
    mission = Mission("g", model=model, budget=Budget(max_tokens=400), backoff_factor=0).run()
    assert mission.status == "failed"
    # 2 calls of 150 tokens: a third of the same size would pass 400, so it is not made
    assert len(model.made) == 2
    [refused] = events(mission, "budget_exceeded")
    assert refused["used"] == 300 and "max_tokens=400" in refused["reason"]
    assert "the next call would use about 150" in refused["reason"]


def test_a_refusal_while_planning_ends_the_mission():
    model = MeteredModel()
    mission = Mission("g", model=model, budget=Budget(max_model_calls=0)).run()
    assert model.made == [] and mission.status == "failed"
    assert "max_model_calls=0" in mission.error


def test_a_cost_budget_refuses_a_model_without_a_price():
    model = MeteredModel(name="house-llm-without-a-price")
    mission = Mission("g", model=model, budget=Budget(max_cost_usd=1.0)).run()
    assert model.made == []
    assert "has no price" in mission.error and "register_price" in mission.error


def test_a_cost_budget_stops_a_priced_model_before_it_spends_past_it():
    model = MeteredModel(usage=(400_000, 100_000), name="gpt-4o-mini")  # $0.12 per call
    mission = Mission("g", model=model, budget=Budget(max_cost_usd=0.30), backoff_factor=0).run()
    assert len(model.made) == 2
    assert mission.usage.cost_usd == pytest.approx(0.24)
    assert "max_cost_usd=0.3 would be passed" in mission.error


def test_without_a_budget_every_call_is_made():
    model = MeteredModel()
    mission = Mission("g", model=model).run()
    assert mission.status == "succeeded" and len(model.made) == 4


def test_ask_waits_for_a_person_whose_retry_raises_the_budget_once_more():
    model = MeteredModel()
    answers = iter(["retry"])
    mission = Mission(
        "g",
        steps=[MissionStep(s, f"do {s}") for s in "abc"],
        model=model,
        budget=Budget(max_model_calls=2),
        on_budget="ask",
        decision_source=lambda step: next(answers, "abort"),
        backoff_factor=0,
    ).run()
    # a, b; c is refused; a person says retry: the limit grows to 4, c's call is made
    assert mission.status == "succeeded", mission.error
    assert len(model.made) == 3
    names = [e["event"] for e in mission.audit_log]
    assert names.index("budget_exceeded") < names.index("mission_waiting")
    assert names.index("escalation_retry") < names.index("budget_raised")
    assert mission.budget == Budget(max_model_calls=4)


def test_ask_then_abort_stops_the_mission_naming_the_budget():
    model = MeteredModel()
    mission = Mission(
        "g",
        steps=[MissionStep(s, f"do {s}") for s in "ab"],
        model=model,
        budget=Budget(max_model_calls=1),
        on_budget="ask",
        decision_source=lambda step: "abort",
    ).run()
    assert mission.status == "failed" and len(model.made) == 1
    assert "max_model_calls=1" in mission.error


def test_parallel_steps_cannot_all_pass_one_check_together():
    import threading

    arrived = threading.Barrier(2, timeout=10)

    class Together(MeteredModel):
        def generate(self, prompt):
            guard_model_call(self.name, prompt)
            self.made.append(prompt)
            try:
                arrived.wait()  # both allowed calls are under way at once
            except threading.BrokenBarrierError:
                pass
            emit_event("model_call", model=self.name, prompt_tokens=1, completion_tokens=1)
            return "done"

    model = Together()
    steps = [MissionStep(s, f"do {s}", parallel=True) for s in "abc"]
    mission = Mission("g", steps=steps, model=model, budget=Budget(max_model_calls=2)).run()
    assert len(model.made) == 2
    assert "max_model_calls=2" in mission.error
