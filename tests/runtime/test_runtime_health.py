"""Health flags of running missions, through the public API (``reconcile()``, the ``health``
and ``stall_reason`` columns of ``status()``, the store's events): a flag appears past its
threshold and not before, a mission waiting for a person is never a "no progress" stall,
and a flagged mission that makes progress again loses its flag.

The test stands in for the clock: it moves a running worker's last heartbeat or last
activity into the past in the store (the worker beats once an hour here, so nothing moves it
back), then asks at 0.9x and 1.1x of a threshold. No test waits for time to pass.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest
from support.executors import Fail, Gated, GateThenProgress, touch
from support.runtime import asking, one_step, store_events, wait_for
from support.waiting import wait_until_waiting

#: Seconds the test moves a heartbeat or an activity into the past.
AGE = 100.0
#: The orchestrator's own thresholds: far off, so only the thresholds each test names decide.
FAR = 3600.0


@pytest.fixture
def orch(orchestrators):
    return orchestrators(heartbeat_secs=FAR, heartbeat_timeout_secs=FAR, no_progress_secs=FAR)


def age(store_dir, mission_id: str, column: str, seconds: float = AGE) -> None:
    """Make the store say the mission's ``column`` (last_heartbeat or last_activity) was
    ``seconds`` ago."""
    with contextlib.closing(sqlite3.connect(store_dir / "store.sqlite", timeout=30)) as conn:
        conn.execute(
            f"UPDATE missions SET {column} = ? WHERE id = ?", (time.time() - seconds, mission_id)
        )
        conn.commit()


def health(orch, mission_id: str) -> tuple[str, str, str | None]:
    """(status, health, stall_reason) of the mission as ``status()`` shows it."""
    row = orch.status().set_index("id").loc[mission_id]
    return row["status"], row["health"], row["stall_reason"]


def stall_events(store_dir, mission_id: str) -> list[str]:
    return [
        f"{e['event']}:{(e['payload'] or {}).get('reason', '')}"
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"] in ("mission_stall", "mission_recovered")
    ]


def started_gated(orch, tmp_path, executor=None):
    gate, inside = tmp_path / "gate", tmp_path / "inside"
    mission = one_step("a quiet worker", executor or Gated(gate, inside), max_retries=0)
    orch.run_async(mission)
    wait_for(inside.exists, 60, "the worker to start its step")
    return mission, gate


@pytest.mark.parametrize(
    ("column", "threshold", "reason"),
    [
        ("last_heartbeat", "heartbeat_timeout_secs", "no_heartbeat"),
        ("last_activity", "no_progress_secs", "no_progress"),
    ],
)
def test_a_flag_appears_past_its_threshold_and_not_before(
    orch, store_dir, tmp_path, column, threshold, reason
):
    mission, gate = started_gated(orch, tmp_path)
    age(store_dir, mission.id, column)
    others = {"heartbeat_timeout_secs": FAR, "no_progress_secs": FAR, "stall_threshold_secs": FAR}

    quiet_for = {**others, threshold: AGE / 0.9}  # 0.9x: the age is under the threshold
    assert orch.reconcile(**quiet_for) == []
    assert health(orch, mission.id) == ("running", "ok", None)

    quiet_for = {**others, threshold: AGE / 1.1}  # 1.1x: the age is past it
    assert orch.reconcile(**quiet_for) == [mission.id]
    wait_for(lambda: health(orch, mission.id)[1] != "ok", 30, "status() to show the flag")
    assert health(orch, mission.id) == ("running", reason, reason)  # still running
    assert stall_events(store_dir, mission.id) == [f"mission_stall:{reason}"]

    touch(gate)
    assert orch.wait(mission.id, timeout=60).status == "succeeded"


@pytest.mark.parametrize("waiting", [True, False], ids=["waiting", "running"])
def test_a_mission_waiting_for_a_person_is_never_a_no_progress_stall(
    orch, store_dir, tmp_path, waiting
):
    """The same quiet hour, past the threshold: the mission that waits for a person is fine
    (nothing is expected of it), the one that runs is flagged."""
    if waiting:
        mission = asking(Fail("needs a person"))
        orch.run_async(mission)
        assert wait_until_waiting(mission, orch) == "fragile"
    else:
        mission, gate = started_gated(orch, tmp_path)
    age(store_dir, mission.id, "last_activity")

    flagged = orch.reconcile(
        stall_threshold_secs=FAR, heartbeat_timeout_secs=FAR, no_progress_secs=AGE / 1.1
    )

    if waiting:
        assert flagged == []
        assert health(orch, mission.id) == ("waiting", "ok", None)
        assert stall_events(store_dir, mission.id) == []
        assert orch.decide(mission.id, "skip") == "fragile"
    else:
        assert flagged == [mission.id]
        touch(gate)
    assert orch.wait(mission.id, timeout=60).status == "succeeded"


def test_resumed_progress_clears_a_no_progress_flag(orch, store_dir, tmp_path):
    gate, inside, then = tmp_path / "gate", tmp_path / "inside", tmp_path / "then"
    mission, _ = started_gated(orch, tmp_path, GateThenProgress(gate, inside, then))
    age(store_dir, mission.id, "last_activity")
    assert orch.reconcile(
        stall_threshold_secs=FAR, heartbeat_timeout_secs=FAR, no_progress_secs=AGE / 1.1
    ) == [mission.id]
    wait_for(lambda: health(orch, mission.id)[1] == "no_progress", 30, "the flag")

    touch(gate)  # the worker reports progress again (and its heartbeat stays an hour off)
    wait_for(lambda: health(orch, mission.id)[1] == "ok", 30, "the flag to clear")
    assert health(orch, mission.id) == ("running", "ok", None)
    assert stall_events(store_dir, mission.id) == [
        "mission_stall:no_progress",
        "mission_recovered:its worker reported progress again",
    ]

    touch(then)
    assert orch.wait(mission.id, timeout=60).status == "succeeded"


@pytest.mark.parametrize(("factor", "flagged"), [(0.9, False), (1.1, True)])
def test_reconcile_without_thresholds_uses_the_orchestrators_heartbeat_timeout(
    orchestrators, store_dir, tmp_path, factor, flagged
):
    orch = orchestrators(heartbeat_secs=FAR, heartbeat_timeout_secs=AGE / factor)
    mission, gate = started_gated(orch, tmp_path)
    age(store_dir, mission.id, "last_heartbeat")
    found = orch.reconcile(stall_threshold_secs=FAR, no_progress_secs=FAR)
    assert found == ([mission.id] if flagged else [])
    touch(gate)
    assert orch.wait(mission.id, timeout=60).status == "succeeded"


@pytest.mark.parametrize(("heartbeat_secs", "timeout"), [(0.5, 10.0), (2.0, 10.0), (3.0, 15.0)])
def test_the_default_heartbeat_timeout_is_five_beats_and_at_least_ten_seconds(
    orchestrators, heartbeat_secs, timeout
):
    assert orchestrators(heartbeat_secs=heartbeat_secs).heartbeat_timeout_secs == timeout
