"""An orchestrator-wide budget (``MissionOrchestrator(budget=...)``) over the real OpenAI SDK
against the loopback server, in kernel threads and in worker processes: the missions of one
orchestrator reserve against one ledger in the store, so together they make exactly the
calls the budget allows; the mission refused ends (or asks) with a reason naming the
orchestrator's budget, and a person's "retry" raises that budget."""

from __future__ import annotations

import math

import pytest
from support.runtime import store_events, wait_for

from mission_widgets import Budget, Mission, MissionOrchestrator
from mission_widgets.core.errors import MissionValidationError

GOAL = "Explain the tides to a ten-year-old"
WAIT = 90
BACKENDS = ["thread", "subprocess"]
CALLS_A_MISSION = 4  # the fake server's three-step plan: plan + three steps


def refused_by_orchestrator(mission):
    return "orchestrator budget" in (mission.error or "")


def run_three(orch):
    missions = [Mission(f"{GOAL} ({i})", backoff_factor=0) for i in range(3)]
    for mission in missions:
        orch.submit(mission)
    return orch.run_all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_missions_together_make_exactly_the_calls_the_orchestrator_budget_allows(
    backend, fake_llm, make_model, orchestrators, store_dir
):
    server = fake_llm(usage=(11, 7))
    model = make_model(server, name="gpt-4o-mini")
    orch = orchestrators(3, backend=backend, model=model, budget=Budget(max_model_calls=6))
    done = run_three(orch)

    assert len(server.chat_requests) == 6  # 3 missions would make 12
    refused = [m for m in done if m.status != "succeeded"]
    assert refused and all(m.status == "failed" for m in refused)
    for mission in refused:
        assert "orchestrator budget max_model_calls=6 would be passed" in mission.error
    refusals = [e["payload"] for e in store_events(store_dir) if e["event"] == "budget_exceeded"]
    assert {r["scope"] for r in refusals} == {"orchestrator"}
    calls = sum(e["event"] == "model_call" for e in store_events(store_dir))
    assert calls == 6
    used = orch.budget_used()
    assert (used["calls"], used["tokens"], used["under_way"]) == (6, 6 * 18, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_orchestrator_cost_budget_stops_the_spending_of_all_its_missions(
    backend, fake_llm, make_model, orchestrators
):
    server = fake_llm(usage=(200_000, 100_000))  # $0.09 a call of gpt-4o-mini
    model = make_model(server, name="gpt-4o-mini")
    orch = orchestrators(3, backend=backend, model=model, budget=Budget(max_cost_usd=0.5))
    done = run_three(orch)

    assert len(server.chat_requests) == 5  # the sixth would bring it to $0.54
    assert orch.budget_used()["cost_usd"] == pytest.approx(0.45)
    row = orch.status().set_index("id")
    assert row["cost_usd"].sum() == pytest.approx(0.45)
    assert any(
        "orchestrator budget max_cost_usd=0.5 would be passed" in (m.error or "") for m in done
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_mission_refused_by_the_orchestrator_budget_asks_and_a_retry_raises_it(
    backend, fake_llm, make_model, orchestrators, store_dir
):
    server = fake_llm(usage=(11, 7))
    model = make_model(server, name="gpt-4o-mini")
    orch = orchestrators(backend=backend, model=model, budget=Budget(max_model_calls=3))
    mission = Mission(GOAL, on_budget="ask", backoff_factor=0)
    orch.run_async(mission)
    wait_for(lambda: orch.waiting_on(mission.id) is not None, 60, "the mission to ask")
    assert len(server.chat_requests) == 3
    [waiting] = [
        e["payload"]
        for e in store_events(store_dir)
        if e["event"] == "mission_waiting" and e["mission_id"] == mission.id
    ]
    assert "orchestrator budget max_model_calls=3" in waiting["error_message"]

    orch.decide(mission.id, "retry")  # the orchestrator's budget grows by its size: 6
    assert orch.wait(mission.id, WAIT).status == "succeeded"
    assert len(server.chat_requests) == CALLS_A_MISSION
    assert orch.budget_used()["budget"]["max_model_calls"] == 6
    [raised] = [e["payload"] for e in store_events(store_dir) if e["event"] == "budget_raised"]
    assert raised["scope"] == "orchestrator"


def test_missions_of_another_orchestrator_on_the_store_do_not_count(
    fake_llm, make_model, orchestrators
):
    server = fake_llm(usage=(11, 7))
    model = make_model(server, name="gpt-4o-mini")
    other = orchestrators(backend="subprocess", model=model)
    capped = orchestrators(backend="subprocess", model=model, budget=Budget(max_model_calls=4))
    assert other.run_async(Mission(GOAL)).wait(timeout=WAIT).status == "succeeded"
    assert capped.run_async(Mission(GOAL)).wait(timeout=WAIT).status == "succeeded"
    assert len(server.chat_requests) == 2 * CALLS_A_MISSION
    assert capped.budget_used()["calls"] == CALLS_A_MISSION


@pytest.mark.parametrize(
    ("budget", "named"),
    [
        ({"max_cost_usd": math.nan}, "max_cost_usd"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_model_calls": math.inf}, "max_model_calls"),
        ({"max_calls": 3}, "max_calls"),
        ("ten dollars", "MissionOrchestrator(budget=...)"),
    ],
)
def test_a_bad_orchestrator_budget_is_refused_naming_it(budget, named, store_dir):
    with pytest.raises(
        MissionValidationError,
        match=named.replace("(", r"\(").replace(")", r"\)").replace(".", r"\."),
    ):
        MissionOrchestrator(store=store_dir, budget=budget)


def test_a_clone_shares_its_orchestrators_budget(fake_llm, make_model, orchestrators):
    server = fake_llm(usage=(11, 7))
    model = make_model(server, name="gpt-4o-mini")
    orch = orchestrators(backend="thread", model=model, budget=Budget(max_model_calls=6))
    assert orch.run_async(Mission(GOAL)).wait(timeout=WAIT).status == "succeeded"
    twin = orchestrators.track(orch.clone())
    refused = twin.run_async(Mission(GOAL, backoff_factor=0)).wait(timeout=WAIT)
    assert len(server.chat_requests) == 6  # 4 + 2: one family, one budget
    assert "orchestrator budget max_model_calls=6 would be passed" in refused.error
    assert twin.budget_used() == orch.budget_used()
