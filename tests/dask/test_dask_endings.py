"""Every Dask mission ends once, with its real cause, on both isolations:
executors raising BaseExceptions, results that cannot be pickled."""

from __future__ import annotations

import pytest
from support.dask_tasks import (
    Raiser,
    Sleeper,
    Steady,
    StepTired,
    Unpicklable,
    topic_events,
    wait_for,
)

from mission_widgets import Mission, MissionStep

pytestmark = [pytest.mark.dask, pytest.mark.slow]

ISOLATIONS = ["process", "thread"]


def started(orch, mission: Mission) -> bool:
    return any(e["event"] == "dask_start" for e in orch.store.events_for(mission.id))


def ends(mission: Mission) -> list[dict]:
    return [e for e in mission.audit_log if e["event"] == "mission_done"]


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize(
    ("error", "named"),
    [
        (SystemExit(7), "SystemExit"),
        (KeyboardInterrupt(), "KeyboardInterrupt"),
        (StepTired("no more"), "StepTired"),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "own-BaseException"],
)
def test_base_exception_from_an_executor_ends_the_mission_once_naming_it(
    dask_orchestrators, client, isolation, error, named
):
    orch = dask_orchestrators(isolation=isolation)
    mission = Mission(
        "raises a BaseException",
        steps=[
            MissionStep("boom", "raise", executor=Raiser(error), max_retries=0),
            MissionStep("after", "never runs", executor=Steady(), depends_on=["boom"]),
        ],
    )
    orch.run_async(mission).wait(timeout=60)

    assert mission.status == "failed"
    assert named in mission.error, mission.error
    assert "exited unexpectedly" not in mission.error and "was lost" not in mission.error
    assert len(ends(mission)) == 1
    row = orch.store.row(mission.id)
    assert row["status"] == "failed" and named in row["error"]
    # The scheduler's log (what a later kernel replays) tells the same single end.
    done = [
        e
        for e in topic_events(client, orch.backend.topic, mission.id)
        if e["event"] == "mission_done"
    ]
    assert len(done) == 1 and named in done[0]["error_message"]
    # The Dask worker survived it: the next mission runs there.
    after = Mission("next", steps=[MissionStep("ok", "fine", executor=Steady())])
    orch.run_async(after).wait(timeout=60)
    assert after.status == "succeeded", after.error


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_unpicklable_result_ends_the_mission_once_with_its_real_cause(
    dask_orchestrators, isolation
):
    orch = dask_orchestrators(isolation=isolation)
    mission = Mission(
        "returns a lock",
        steps=[
            MissionStep("lock", "return a lock", executor=Unpicklable(), max_retries=0),
            MissionStep("after", "goes on", executor=Steady(), depends_on=["lock"]),
        ],
    )
    orch.run_async(mission).wait(timeout=60)

    assert len(ends(mission)) == 1
    row = orch.store.row(mission.id)
    assert row["finished_at"] is not None
    assert row["status"] == mission.status
    text = f"{mission.error} {row['error']} {mission.audit_log}"
    assert "exited unexpectedly" not in text and "exit code 0" not in text
    assert "without a final event" not in text
    if mission.status == "failed":  # the step fails naming the type
        assert "lock" in (mission.error or "").lower(), mission.error
    else:  # or the result is kept as its repr, with a warning (CORE's choice)
        assert mission.status == "succeeded"
        assert "lock" in str(mission.steps[0].result).lower()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_cancelled_missions_each_end_once_as_cancelled(dask_orchestrators, isolation):
    # Two run on the workers (one thread each), two wait in the scheduler's queue.
    orch = dask_orchestrators(max_concurrent=4, isolation=isolation)
    missions = [
        Mission(f"long {i}", steps=[MissionStep("wait", "wait", executor=Sleeper(30, 0.05))])
        for i in range(4)
    ]
    handles = [orch.run_async(mission) for mission in missions]
    wait_for(
        lambda: sum(1 for m in missions if started(orch, m)) >= 2,
        30,
        "two missions to start on the workers",
    )
    for mission in missions:
        orch.cancel(mission.id)
    for handle in handles:
        handle.wait(timeout=30)

    for mission in missions:
        assert mission.status == "cancelled", (mission.status, mission.error)
        assert len(ends(mission)) == 1
        row = orch.store.row(mission.id)
        assert row["status"] == "cancelled" and "cancel" in row["error"], row["error"]
