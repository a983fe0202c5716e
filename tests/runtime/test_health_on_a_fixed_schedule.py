"""Health is checked on a fixed schedule that no stream of changes can postpone.

Real worker processes on a real store, and nobody calls reconcile() or poll_async(): the
orchestrator's own health monitor flags a SIGSTOPped worker ("no_heartbeat", still
``running``) while another mission streams progress, and clears the flag on SIGCONT; a
quiet mission is flagged "no_progress" and cleared when it moves again; a mission waiting
for a person is never flagged.
"""

from __future__ import annotations

import contextlib

import psutil
import pytest
from support.executors import Fail, Gated, ProgressAfterGate, StreamProgress
from support.runtime import asking, event_names, holds_for, one_step, suspend_outside_write
from support.waiting import wait_for

from mission_widgets.orchestrator.health import DEFAULT_NO_PROGRESS_SECS, health_of

HEARTBEAT_SECS = 0.2
HEARTBEAT_TIMEOUT = 1.0
ROUNDS = 5


def _events(orch, mission_id, name):
    return [e for e in orch.store.events_for(mission_id) if e["event"] == name]


def _freeze_beside_a_stream(orch, tmp_path, n: int) -> tuple[bool, bool]:
    """One round: (flagged in time, cleared after SIGCONT)."""
    gate, started = tmp_path / f"gate{n}", tmp_path / f"started{n}"
    streamer = orch.run_async(one_step(f"streams {n}", StreamProgress(gate)))
    frozen = orch.run_async(one_step(f"freezes {n}", Gated(gate, started)))
    wait_for(started.exists, 30, "the frozen step to start")
    wait_for(lambda: orch.store.row(frozen.mission_id)["last_heartbeat"], 10, "a beat")
    wait_for(lambda: _events(orch, streamer.mission_id, "progress"), 10, "the stream")
    worker = psutil.Process(frozen.pid)
    suspend_outside_write(worker, orch.store.db_path)
    try:
        streamed_before = len(_events(orch, streamer.mission_id, "progress"))
        wait_for(lambda: frozen.mission.stall_reason == "no_heartbeat", 30, "the flag")
        assert frozen.mission.status == "running"  # a health flag, not an end
        (flag,) = _events(orch, frozen.mission_id, "mission_stall")
        last_beat = orch.store.row(frozen.mission_id)["last_heartbeat"]
        # Within heartbeat_timeout_secs + 1 s of the worker's last beat, while the other
        # mission kept streaming changes.
        in_time = flag["timestamp"] - last_beat <= HEARTBEAT_TIMEOUT + 1.0
        assert len(_events(orch, streamer.mission_id, "progress")) > streamed_before
        health = orch.status().set_index("id").loc[frozen.mission_id, "health"]
        assert health == "no_heartbeat"
        assert streamer.mission.stall_reason is None
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.resume()
    wait_for(lambda: frozen.mission.stall_reason is None, 30, "the flag to clear")
    cleared = bool(_events(orch, frozen.mission_id, "mission_recovered"))
    gate.touch()
    assert frozen.wait(timeout=30).status == "succeeded"
    assert streamer.wait(timeout=30).status == "succeeded"
    return in_time, cleared


@pytest.mark.timeout(900)  # many rounds of real processes, on a busy machine too
def test_a_frozen_worker_is_flagged_in_time_beside_a_streaming_one_and_clears(
    orchestrators, tmp_path
):
    orch = orchestrators(
        2,
        heartbeat_secs=HEARTBEAT_SECS,
        heartbeat_timeout_secs=HEARTBEAT_TIMEOUT,
        no_progress_secs=600,
    )
    rounds = [_freeze_beside_a_stream(orch, tmp_path, n) for n in range(ROUNDS)]
    flagged_in_time = sum(in_time for in_time, _ in rounds)
    cleared = sum(done for _, done in rounds)
    assert (flagged_in_time, cleared) == (ROUNDS, ROUNDS)


def _health(row, now, waiting=False):
    return health_of(
        row,
        now,
        heartbeat_timeout_secs=10.0,
        no_progress_secs=60,
        waiting=waiting,
        has_heartbeat=True,
    )


@pytest.mark.parametrize(("factor", "flagged"), [(0.9, False), (1.1, True)], ids=["0.9x", "1.1x"])
def test_heartbeat_threshold_table(factor, flagged):
    now = 1_000.0
    row = {"pid": 42, "last_heartbeat": now - factor * 10.0, "last_activity": now}
    row["started_at"] = now - 100
    found = _health(row, now)
    assert (found is not None and found[0] == "no_heartbeat") is flagged


@pytest.mark.parametrize(("factor", "flagged"), [(0.9, False), (1.1, True)], ids=["0.9x", "1.1x"])
def test_no_progress_threshold_table(factor, flagged):
    now = 1_000.0
    row = {"pid": 42, "last_heartbeat": now, "last_activity": now - factor * 60.0}
    row["started_at"] = now - 100
    found = _health(row, now)
    assert (found is not None and found[0] == "no_progress") is flagged
    waiting = _health(row, now, waiting=True)
    assert waiting is None  # nothing is expected of a mission that asks a person


def test_the_default_no_progress_threshold_suits_a_demo(orchestrators):
    assert DEFAULT_NO_PROGRESS_SECS == 60.0
    assert orchestrators().no_progress_secs == 60.0
    with pytest.raises(ValueError, match="no_progress_secs"):
        orchestrators(no_progress_secs=float("nan"))


def test_a_waiting_mission_is_never_flagged(orchestrators):
    orch = orchestrators(heartbeat_secs=HEARTBEAT_SECS, no_progress_secs=0.3)
    mission = asking(Fail("flaky"))
    orch.run_async(mission)
    wait_for(lambda: mission.status == "waiting", 30, "the mission to wait for a person")
    holds_for(lambda: mission.stall_reason is None, 2.0, "no flag on a waiting mission")
    assert "mission_stall" not in event_names(orch.store.root, mission.id)
    orch.decide(mission.id, "abort")
    assert orch.wait(mission.id, 30).status == "failed"


def test_resumed_progress_clears_a_no_progress_flag(orchestrators, tmp_path):
    orch = orchestrators(heartbeat_secs=HEARTBEAT_SECS, no_progress_secs=0.5)
    again, done = tmp_path / "again", tmp_path / "done"
    handle = orch.run_async(one_step("goes quiet", ProgressAfterGate([again, done])))
    wait_for(lambda: handle.mission.stall_reason == "no_progress", 30, "the no-progress flag")
    assert handle.mission.status == "running"  # a health flag, not an end
    again.touch()  # it reports progress again
    wait_for(lambda: _events(orch, handle.mission_id, "mission_recovered"), 30, "recovery")
    done.touch()
    assert handle.wait(timeout=30).status == "succeeded"
    names = event_names(orch.store.root, handle.mission_id)
    assert names.index("mission_stall") < names.index("mission_recovered")
