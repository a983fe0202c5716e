"""Budgets over the real OpenAI SDK against the loopback server, in a kernel thread and in a
worker process: the call that would pass the budget never reaches the server, status()
shows why, and a person can let the mission go on."""

from __future__ import annotations

import pytest
from support.runtime import store_events, wait_for

from mission_widgets import Budget, Mission

GOAL = "Explain the tides to a ten-year-old"
WAIT = 60
BACKENDS = ["thread", "subprocess"]


def events_named(store_dir, mission_id, name):
    return [
        e["payload"]
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"] == name
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_call_past_max_model_calls_never_reaches_the_server(
    backend, fake_llm, make_model, orchestrators, store_dir
):
    server = fake_llm(usage=(11, 7))
    orch = orchestrators(backend=backend, model=make_model(server, name="gpt-4o-mini"))
    mission = Mission(GOAL, budget=Budget(max_model_calls=2), backoff_factor=0)
    mission = orch.run_async(mission).wait(timeout=WAIT)

    assert len(server.chat_requests) == 2  # the plan and one step: the third call not made
    assert mission.status == "failed"
    row = orch.status().set_index("id").loc[mission.id]
    assert "budget max_model_calls=2 would be passed" in row["error"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (22, 14)
    [refused] = events_named(store_dir, mission.id, "budget_exceeded")
    assert refused["budget"] == "max_model_calls" and refused["model"] == "openai:gpt-4o-mini"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cost_budget_stops_the_spending_in_the_worker(
    backend, fake_llm, make_model, orchestrators
):
    server = fake_llm(usage=(200_000, 100_000))  # $0.09 a call of gpt-4o-mini
    orch = orchestrators(backend=backend, model=make_model(server, name="gpt-4o-mini"))
    mission = Mission(GOAL, budget=Budget(max_cost_usd=0.2), backoff_factor=0)
    mission = orch.run_async(mission).wait(timeout=WAIT)

    assert len(server.chat_requests) == 2
    row = orch.status().set_index("id").loc[mission.id]
    assert row["cost_usd"] == pytest.approx(0.18) and row["cost_usd"] <= 0.2
    assert "max_cost_usd=0.2 would be passed" in row["error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_on_budget_ask_waits_for_a_person_who_raises_it(
    backend, fake_llm, make_model, orchestrators, store_dir
):
    server = fake_llm(usage=(11, 7))
    orch = orchestrators(backend=backend, model=make_model(server, name="gpt-4o-mini"))
    mission = Mission(GOAL, budget=Budget(max_model_calls=3), on_budget="ask", backoff_factor=0)
    orch.run_async(mission)
    wait_for(lambda: orch.waiting_on(mission.id) is not None, 30, "the mission to ask")
    assert len(server.chat_requests) == 3
    waiting = events_named(store_dir, mission.id, "mission_waiting")
    assert "max_model_calls=3" in waiting[0]["error_message"]

    orch.decide(mission.id, "retry")
    assert orch.wait(mission.id, WAIT).status == "succeeded"
    assert len(server.chat_requests) == 4
    assert events_named(store_dir, mission.id, "budget_raised")
