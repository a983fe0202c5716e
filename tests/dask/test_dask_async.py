"""``async def`` executors and async models on the Dask backend, on both
isolations: each coroutine runs on an event loop of its own in the process running the mission."""

from __future__ import annotations

import pytest
from support.dask_tasks import AsyncPlanner, async_upper

from mission_widgets import Mission, MissionStep

pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_async_executors_run_on_dask_workers(dask_orchestrators, isolation):
    orch = dask_orchestrators(isolation=isolation)
    mission = Mission(
        "async steps",
        steps=[
            MissionStep("a", "first", executor=async_upper),
            MissionStep("b", "second", executor=async_upper, parallel=True, depends_on=["a"]),
            MissionStep("c", "third", executor=async_upper, parallel=True, depends_on=["a"]),
        ],
    )
    orch.run_async(mission).wait(timeout=60)

    assert mission.status == "succeeded", mission.error
    for step, task in zip(mission.steps, ["FIRST", "SECOND", "THIRD"], strict=True):
        assert isinstance(step.result, str) and step.result.startswith(task + " on "), step.result
    assert sum(1 for e in mission.audit_log if e["event"] == "mission_done") == 1


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_a_model_with_an_async_generate_plans_on_dask_workers(dask_orchestrators, isolation):
    orch = dask_orchestrators(isolation=isolation)
    mission = Mission("plan me", model=AsyncPlanner(), executor=async_upper)
    orch.run_async(mission).wait(timeout=60)

    assert mission.status == "succeeded", mission.error
    assert [s.id for s in mission.steps] == ["s1", "s2"]
    assert mission.steps[1].result.startswith("SECOND on "), mission.steps[1].result
