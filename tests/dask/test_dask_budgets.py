"""Budgets on Dask workers: the worker counts the calls and refuses the one that would pass
the budget; the kernel sees why in status()."""

from __future__ import annotations

import pytest

from mission_widgets import Budget, Mission, OpenAIModel
from mission_widgets.testing import FakeLLMServer

pytestmark = pytest.mark.dask


def test_a_dask_worker_does_not_make_the_call_past_the_budget(dask_orchestrators):
    with FakeLLMServer(usage=(11, 7)) as server:
        # a base_url and no key: the worker needs no secret (the placeholder key)
        model = OpenAIModel("gpt-4o-mini", base_url=server.base_url, max_retries=0)
        orch = dask_orchestrators(model=model)
        mission = Mission("Explain the tides", budget=Budget(max_model_calls=2), backoff_factor=0)
        mission = orch.run_async(mission).wait(timeout=90)
        assert len(server.chat_requests) == 2
    assert mission.status == "failed"
    row = orch.status().set_index("id").loc[mission.id]
    assert "budget max_model_calls=2 would be passed" in row["error"]
    assert row["cost_usd"] == pytest.approx(2 * (11 * 0.15 + 7 * 0.60) / 1e6)


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_an_orchestrator_budget_on_dask_is_kept_on_the_scheduler(dask_orchestrators, isolation):
    with FakeLLMServer(usage=(11, 7)) as server:
        model = OpenAIModel("gpt-4o-mini", base_url=server.base_url, max_retries=0)
        orch = dask_orchestrators(
            model=model, isolation=isolation, budget=Budget(max_model_calls=6)
        )
        for i in range(3):  # 4 calls each (plan + 3 steps): 12 wanted
            orch.submit(Mission(f"Explain the tides ({i})", backoff_factor=0))
        done = orch.run_all()
        assert len(server.chat_requests) == 6
    refused = [m for m in done if m.status != "succeeded"]
    assert refused
    for mission in refused:
        assert "orchestrator budget max_model_calls=6 would be passed" in mission.error
    assert orch.budget_used()["calls"] == 6
    rows = orch.status().set_index("id")
    assert rows["prompt_tokens"].sum() == 6 * 11
