"""Reliability with real processes: kill -9, SIGSTOP and silent stalls, cancel of a process
tree, corrupt store rows and mission files."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest
from support.executors import Gated, SpawnChildAndWait, echo
from support.runtime import (
    BackgroundRunAll,
    group_alive,
    is_alive,
    one_step,
    store_events,
    suspend_outside_write,
    wait_for,
)

from mission_widgets.runtime.subprocess_backend import worker_environment


def start_gated(orch, tmp_path, names, gate):
    """run_async one gated mission per name; wait until each executor has started."""
    missions, handles = {}, {}
    for name in names:
        started = tmp_path / f"{name}.started"
        missions[name] = one_step(name, Gated(gate, started, result=f"{name} result"))
        handles[name] = orch.run_async(missions[name])
    for name in names:
        wait_for((tmp_path / f"{name}.started").exists, what=f"mission {name} to start")
    return missions, handles


def test_kill_9_fails_that_mission_only(orchestrators, tmp_path):
    orch = orchestrators(3)
    gate = tmp_path / "gate"
    missions, handles = start_gated(orch, tmp_path, ["victim", "left", "right"], gate)
    victim = missions["victim"]

    os.kill(handles["victim"].pid, signal.SIGKILL)
    wait_for(lambda: orch.poll_async() and victim.is_finished, what="the victim to be failed")

    assert victim.status == "failed"
    assert "signal 9" in victim.error
    assert victim in orch.completed and victim not in orch.running
    for name in ("left", "right"):
        assert missions[name].status == "running" and missions[name] in orch.running
        assert is_alive(psutil.Process(handles[name].pid))
    row = orch.status().set_index("id").loc[victim.id]
    assert row["status"] == "failed" and "signal 9" in row["error"]

    gate.touch()
    for name in ("left", "right"):
        assert handles[name].wait(timeout=30).status == "succeeded"
        assert missions[name].steps[0].result == f"{name} result"
    assert victim.status == "failed"


@pytest.mark.parametrize("stop_with", ["reconcile", "cancel"])
def test_sigstop_is_flagged_no_heartbeat_and_stays_running(orchestrators, tmp_path, stop_with):
    orch = orchestrators(2, heartbeat_secs=0.2, cancel_grace_secs=1.0)
    gate = tmp_path / "gate"
    missions, handles = start_gated(orch, tmp_path, ["frozen", "healthy"], gate)
    frozen = missions["frozen"]
    worker = psutil.Process(handles["frozen"].pid)
    suspend_outside_write(worker, orch.store.db_path)  # SIGSTOP
    try:
        stalled = wait_for(
            lambda: orch.reconcile(600, heartbeat_timeout_secs=1.0),
            what="reconcile to flag the stopped worker",
        )
        assert stalled == [frozen.id]  # the healthy mission beats on
        assert (frozen.status, frozen.stall_reason) == ("running", "no_heartbeat")
        assert "mission_stall" in [e["event"] for e in frozen.audit_log]
        assert worker.status() == psutil.STATUS_STOPPED
        row = orch.status().set_index("id").loc[frozen.id]
        assert (row["status"], row["stall_reason"], row["health"]) == (
            "running",
            "no_heartbeat",
            "no_heartbeat",
        )
        assert missions["healthy"].status == "running"

        if stop_with == "reconcile":
            assert orch.reconcile(600, heartbeat_timeout_secs=1.0, kill=True) == [frozen.id]
            expected = "failed"  # stalled is only for a step that used its retries
        else:
            assert orch.cancel(frozen.id) is True
            expected = "cancelled"
        assert not is_alive(worker)
        assert frozen.status == expected
        assert frozen in orch.completed and frozen not in orch.running
        assert orch.cancel(frozen.id) is False
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.resume()
            worker.kill()
    gate.touch()
    assert handles["healthy"].wait(timeout=30).status == "succeeded"


def test_no_progress_is_a_health_flag(orchestrators, tmp_path):
    orch = orchestrators(2, heartbeat_secs=0.2, cancel_grace_secs=1.0)
    gate = tmp_path / "gate"
    missions, handles = start_gated(orch, tmp_path, ["silent"], gate)
    silent = missions["silent"]
    worker = psutil.Process(handles["silent"].pid)

    stalled = wait_for(
        lambda: orch.reconcile(600, no_progress_secs=0.5), what="reconcile to flag no progress"
    )

    assert stalled == [silent.id]
    assert (silent.status, silent.stall_reason) == ("running", "no_progress")  # beats fine
    assert is_alive(worker)
    assert orch.reconcile(600, no_progress_secs=0.5, kill=True) == [silent.id]
    assert not is_alive(worker)
    assert silent.status == "failed" and "killed by reconcile()" in silent.error
    assert silent.error.startswith("no_progress (no progress for ")
    assert orch.running == []


def test_cancel_kills_the_whole_process_group(orchestrators, tmp_path):
    orch = orchestrators(cancel_grace_secs=5.0)
    pid_file = tmp_path / "child.pid"
    mission = one_step("spawner", SpawnChildAndWait(pid_file))
    handle = orch.run_async(mission)
    wait_for(pid_file.exists, what="the executor's child process")
    child = psutil.Process(int(pid_file.read_text()))
    worker = psutil.Process(handle.pid)
    assert os.getpgid(child.pid) == handle.pid == os.getpgid(handle.pid)

    began = time.monotonic()
    assert handle.cancel() is True

    # SIGTERM is enough for both: no waiting out the grace period (the orphaned child's
    # zombie may wait long for its reaper, but it has exited).
    assert time.monotonic() - began < 2.5
    assert mission.status == "cancelled"
    assert not is_alive(worker) and not is_alive(child)
    assert group_alive(handle.pid) == []
    assert orch.status().set_index("id").loc[mission.id, "status"] == "cancelled"
    assert handle.cancel() is False  # finished: nothing to cancel


def test_cancel_a_queued_mission(orchestrators, store_dir, tmp_path):
    orch = orchestrators(1)
    gate, started = tmp_path / "gate", tmp_path / "started"
    first = one_step("first", Gated(gate, started))
    queued = one_step("queued", echo)
    orch.submit(first).submit(queued)
    runner = BackgroundRunAll(orch)
    try:
        wait_for(started.exists, what="the first mission to start")
        assert queued in orch.pending_queue
        assert orch.cancel(queued.id) is True
        assert queued.status == "cancelled" and queued not in orch.pending_queue
    finally:
        gate.touch()
    assert runner.join() == [first, queued]
    assert first.status == "succeeded" and queued.status == "cancelled"
    names = [e["event"] for e in store_events(store_dir) if e["mission_id"] == queued.id]
    assert names == ["mission_done"]  # it never started
    assert orch.status().set_index("id").loc[queued.id, "status"] == "cancelled"
    assert orch.cancel(queued.id) is False


def test_cancel_a_finished_mission_returns_false(orchestrators):
    orch = orchestrators()
    mission = one_step("quick", echo)
    orch.submit(mission)
    orch.run_all()
    assert orch.cancel(mission.id) is False
    assert mission.status == "succeeded"
    with pytest.raises(KeyError, match="no mission"):
        orch.cancel("mission_that_does_not_exist")


def test_corrupt_mission_file_fails_that_mission_only(orchestrators, store_dir, tmp_path):
    orch = orchestrators(2)
    store = orch.store
    bad = one_step("corrupt file", echo)
    store.register(bad.id, bad.goal, backend="subprocess", owner=None, n_steps=1)
    path = store.mission_file(bad.id)
    path.write_bytes(b"\x80\x04 this is not a pickle")

    worker = subprocess.run(
        [sys.executable, "-m", "mission_widgets.worker", str(store.root), bad.id],
        capture_output=True,
        text=True,
        timeout=60,
        env=worker_environment(),
    )
    assert worker.returncode != 0
    assert str(path) in worker.stderr

    good = [one_step(f"good {i}", echo) for i in range(2)]
    for mission in good:
        orch.submit(mission)
    assert [m.status for m in orch.run_all()] == ["succeeded", "succeeded"]

    mirror = orch.get(bad.id)
    assert mirror.status == "failed"
    assert str(path) in mirror.error and "corrupt" in mirror.error
    rows = orch.status().set_index("id")
    assert rows.loc[bad.id, "status"] == "failed" and str(path) in rows.loc[bad.id, "error"]
    assert all(pd_isna(rows.loc[m.id, "error"]) for m in good)

    fresh = orchestrators(2)  # a restarted kernel sees the same
    assert fresh.get(bad.id).status == "failed" and str(path) in fresh.get(bad.id).error
    assert all(fresh.get(m.id).status == "succeeded" for m in good)


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def corrupt(store_dir, sql: str, *args) -> int:
    with contextlib.closing(sqlite3.connect(store_dir / "store.sqlite", timeout=30)) as conn:
        changed = conn.execute(sql, args).rowcount
        conn.commit()
    return changed


def first_seq(store_dir, mission_id: str, event: str) -> int:
    return next(
        e["seq"]
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"] == event
    )


@pytest.mark.parametrize("what", ["event", "final state"])
def test_corrupt_store_row_is_a_clear_error_on_reattach(orchestrators, store_dir, what):
    orch = orchestrators(3)
    missions = [one_step(f"m{i}", echo) for i in range(3)]
    for mission in missions:
        orch.submit(mission)
    orch.run_all()
    victim, others = missions[0], missions[1:]
    if what == "event":
        seq = first_seq(store_dir, victim.id, "step_done")
        assert corrupt(store_dir, "UPDATE events SET payload='{' WHERE seq=?", seq) == 1
        expected = [f"event #{seq} of mission {victim.id} is corrupt"]
    else:
        sql = "UPDATE missions SET state_json='{' WHERE id=?"
        assert corrupt(store_dir, sql, victim.id) == 1
        expected = ["corrupt", str(orch.store.db_path)]

    fresh = orchestrators(3)  # a restarted kernel

    mirror = fresh.get(victim.id)
    assert mirror.error is not None
    for text in expected:
        assert text in mirror.error
    assert mirror in fresh.completed
    if what == "event":
        errors = [e for e in mirror.audit_log if e["event"] == "store_error"]
        assert len(errors) == 1 and victim.id in errors[0]["error_message"]
    for mission in others:
        twin = fresh.get(mission.id)
        assert twin.status == "succeeded" and twin.error is None
        assert twin.steps[0].result == f"did: work of {mission.goal}"
        assert [e["event"] for e in twin.audit_log] == [e["event"] for e in mission.audit_log]


def test_corrupt_event_is_a_clear_error_on_poll(orchestrators, store_dir, tmp_path):
    reader = orchestrators(2)  # idle: no watcher reads the events before they are corrupted
    orch = orchestrators(2)
    gate = tmp_path / "gate"
    missions, handles = start_gated(orch, tmp_path, ["victim", "bystander"], gate)
    seq = first_seq(store_dir, missions["victim"].id, "step_start")
    assert not reader.watching and reader.running == []
    assert corrupt(store_dir, "UPDATE events SET payload='{' WHERE seq=?", seq) == 1

    reader.poll_async()

    victim, bystander = reader.get(missions["victim"].id), reader.get(missions["bystander"].id)
    assert f"event #{seq} of mission {victim.id} is corrupt" in victim.error
    assert [e["event"] for e in victim.audit_log if e["event"] == "store_error"] == ["store_error"]
    assert bystander.error is None and bystander.steps[0].status == "running"
    # The event is lost, not the mission: it goes on, and ends as its worker says.
    assert victim in reader.running and is_alive(psutil.Process(handles["victim"].pid))
    assert reader.watching  # it mirrors running missions now
    gate.touch()
    assert reader.wait(victim.id, timeout=30).status == "succeeded"
    assert reader.wait(bystander.id, timeout=30).status == "succeeded"
    assert victim.steps[0].result == "victim result"
    assert f"event #{seq}" in victim.error and bystander.error is None
