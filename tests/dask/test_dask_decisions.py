"""Decisions by a person on the Dask backend: a mission with
``StallPolicy(on_max_retries="ask")`` waits on its Dask worker, keeps its heartbeat, and takes
the answer written into the store by ``orch.decide`` (this orchestrator or another one on the
store), which the kernel side forwards to the worker; with no answer the fallback applies."""

from __future__ import annotations

import pytest
from distributed import Client
from support.dask_tasks import Analyst, FlakyOnce, Steady, wait_for
from support.waiting import wait_until_waiting

from mission_widgets import Mission, MissionOrchestrator, MissionStep, StallPolicy

pytestmark = [pytest.mark.dask, pytest.mark.slow]

ISOLATIONS = ["process", "thread"]


def asking(goal: str, executor=None, **policy) -> Mission:
    return Mission(
        goal,
        steps=[
            MissionStep("flaky", "fails once", executor=executor or FlakyOnce(), max_retries=0),
            MissionStep("after", "runs after", executor=Steady(), depends_on=["flaky"]),
        ],
        stall_policy=StallPolicy(on_max_retries="ask", **policy),
    )


def events_named(orch, mission_id: str, name: str) -> list[dict]:
    return [e for e in orch.store.events_for(mission_id) if e["event"] == name]


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("action", ["retry", "skip", "abort"])
def test_a_waiting_mission_on_dask_takes_the_decision(dask_orchestrators, isolation, action):
    orch = dask_orchestrators(isolation=isolation)
    mission = asking(f"asks, then {action}")
    handle = orch.run_async(mission)
    assert wait_until_waiting(mission, orch) == "flaky"
    waiting = events_named(orch, mission.id, "mission_waiting")[0]
    assert waiting["step_id"] == "flaky" and waiting.get("waiting_on") == "flaky"
    # Waiting is not hanging: the heartbeat goes on, the mission is not over.
    beat = orch.store.row(mission.id)["last_heartbeat"]
    wait_for(
        lambda: orch.store.row(mission.id)["last_heartbeat"] > beat, 10, "a heartbeat while waiting"
    )
    assert orch.store.row(mission.id)["finished_at"] is None

    orch.decide(mission.id, action)
    handle.wait(timeout=60)

    decided = events_named(orch, mission.id, f"escalation_{action}")
    assert len(decided) == 1 and decided[0].get("decided_by") == "person"
    assert len(events_named(orch, mission.id, "mission_done")) == 1
    flaky, after = mission.steps
    if action == "retry":
        assert mission.status == "succeeded", mission.error
        assert flaky.result == "ok after 2 attempts"
    elif action == "skip":
        assert mission.status == "succeeded", mission.error
        assert flaky.result == "[SKIPPED: user decision]"
        assert after.status == "done"
    else:
        assert mission.status == "failed"
        assert after.status != "done"


def test_a_decision_from_a_second_orchestrator_reaches_the_dask_worker(dask_orchestrators):
    orch = dask_orchestrators()
    mission = asking("asks; another process answers")
    handle = orch.run_async(mission)
    wait_until_waiting(mission, orch)

    # e.g. another notebook naming the store: it answers, it does not own (or cancel) the mission
    other = MissionOrchestrator(store=orch.store.root)
    try:
        other.decide(mission.id, "skip")
    finally:
        other.close()
    handle.wait(timeout=60)

    assert mission.status == "succeeded", mission.error
    assert mission.steps[0].result == "[SKIPPED: user decision]"
    assert len(events_named(orch, mission.id, "escalation_skip")) == 1


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_explain_reaches_the_retry_on_the_dask_worker(dask_orchestrators, isolation):
    orch = dask_orchestrators(isolation=isolation)
    mission = asking("explained, then retried", executor=FlakyOnce(show_context=True))
    mission.model = Analyst()
    handle = orch.run_async(mission)
    wait_until_waiting(mission, orch)

    assert orch.explain(mission.id) == Analyst.answer
    orch.decide(mission.id, "retry")
    handle.wait(timeout=60)

    assert mission.status == "succeeded", mission.error
    result = mission.steps[0].result
    assert "[AGENT ANALYSIS]" in result and Analyst.answer in result, result
    retried = events_named(orch, mission.id, "escalation_retry")
    assert len(retried) == 1 and retried[0].get("explanation") == Analyst.answer


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_no_decision_in_time_applies_the_fallback_on_dask(dask_orchestrators, isolation):
    orch = dask_orchestrators(isolation=isolation)
    mission = asking("nobody answers", decision_timeout_secs=1.0)
    orch.run_async(mission).wait(timeout=60)

    assert mission.status == "failed"
    aborted = events_named(orch, mission.id, "escalation_abort")
    assert len(aborted) == 1 and aborted[0].get("decided_by") == "timeout"
    assert "timeout" in (mission.error or "").lower() or "no decision" in (mission.error or "")
    assert len(events_named(orch, mission.id, "mission_done")) == 1


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_cancel_stops_a_mission_waiting_on_dask(dask_orchestrators, isolation):
    orch = dask_orchestrators(isolation=isolation)
    mission = asking("waits, then is cancelled")
    handle = orch.run_async(mission)
    wait_until_waiting(mission, orch)

    orch.cancel(mission.id)
    handle.wait(timeout=60)

    assert mission.status == "cancelled"
    assert len(events_named(orch, mission.id, "mission_done")) == 1
    assert not events_named(orch, mission.id, "escalation_retry")


def test_the_question_survives_a_kernel_restart_on_dask(cluster, tmp_path):
    store = tmp_path / "store"
    mission = asking("asks while its kernel restarts")
    with Client(cluster, set_as_default=False) as first:
        orch = MissionOrchestrator(backend="dask", client=first, store=store, heartbeat_secs=0.3)
        orch.run_async(mission)
        wait_until_waiting(mission, orch)
        orch.close()  # the kernel goes away; the mission waits on its Dask worker
    with Client(cluster, set_as_default=False) as second:
        again = MissionOrchestrator(backend="dask", client=second, store=store)
        try:
            assert again.waiting_on(mission.id) == "flaky"
            again.decide(mission.id, "retry")
            finished = again.wait(mission.id, timeout=60)
            assert finished.status == "succeeded", finished.error
            assert finished.steps[0].result == "ok after 2 attempts"
            assert len(events_named(again, mission.id, "escalation_retry")) == 1
        finally:
            again.cancel_all()
            again.close()
