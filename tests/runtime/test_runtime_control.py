"""A person's controls on missions of a store, from any process: cancel of another process's
queue (16.5), stalls that recover (12.5), forget finished history (12.2), and the refusals
of decide()/explain() (14.3)."""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import sys
import textwrap

import psutil
import pytest
from support.executors import Gated, echo
from support.runtime import (
    TESTS_DIR,
    event_names,
    one_step,
    store_events,
    suspend_outside_write,
    wait_for,
)

from mission_widgets.core.errors import MissionError
from mission_widgets.orchestrator.cancellation import cancel_in_store
from mission_widgets.runtime.store import MissionStore, StoreError

OWNER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from support.executors import Gated
    from mission_widgets import Mission, MissionOrchestrator, MissionStep

    store, gate, out = sys.argv[2:5]
    orch = MissionOrchestrator(1, store=store)
    first = Mission("first", steps=[MissionStep("w", "wait", Gated(gate))], backoff_factor=0)
    queued = Mission("queued", steps=[MissionStep("w", "wait", Gated(gate))], backoff_factor=0)
    orch.submit(first).submit(queued)
    orch.start_queued()
    Path(out).write_text(json.dumps({"first": first.id, "queued": queued.id}))
    done = orch.run_all() + [orch.wait(first.id, timeout=60)]
    Path(out + ".done").write_text(json.dumps({m.id: [m.status, m.error] for m in done}))
    """
)


def test_cancel_a_queued_mission_of_another_live_process(orchestrators, store_dir, tmp_path):
    """The owner (another process) is alive and draining: the cancel is a request in the
    store that the owner honours; the mission never starts."""
    script, gate, out = tmp_path / "owner.py", tmp_path / "gate", tmp_path / "ids.json"
    script.write_text(OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(gate), str(out)]
    )
    try:
        wait_for(out.exists, 60, "the owner to queue its missions")
        ids = json.loads(out.read_text())
        here = orchestrators(2)
        assert ids["queued"] not in here.missions  # a live owner's queue is not adopted

        assert here.cancel(ids["queued"]) is True

        wait_for(
            lambda: (here.store.row(ids["queued"]) or {}).get("status") == "cancelled",
            20,
            "the owner to end the queued mission",
        )
        gate.touch()
        assert owner.wait(timeout=60) == 0
    finally:
        gate.touch()
        owner.kill()
        owner.wait()
    ended = json.loads((tmp_path / "ids.json.done").read_text())
    assert ended[ids["queued"]][0] == "cancelled"
    assert "another process" in ended[ids["queued"]][1]
    assert ended[ids["first"]][0] == "succeeded"
    assert event_names(store_dir, ids["queued"]) == ["mission_done"]  # it never started
    assert here.cancel(ids["queued"]) is False


def test_cancel_in_store_ends_a_dead_owners_queue_and_stops_a_worker(orchestrators, tmp_path):
    orch = orchestrators(1)
    gate = tmp_path / "gate"
    running = one_step("running", Gated(gate, tmp_path / "started"))
    orch.run_async(running)
    wait_for((tmp_path / "started").exists, 30, "the worker to run")
    pid = orch.store.row(running.id)["pid"]

    # What the CLI does: no orchestrator, only the store.
    assert cancel_in_store(MissionStore(orch.store.root), running.id, reason="test", grace=2) == (
        "stopped"
    )
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert orch.wait(running.id, timeout=20).status == "cancelled"
    assert [e for e in event_names(orch.store.root, running.id) if e == "mission_done"] == [
        "mission_done"
    ]
    with pytest.raises(KeyError, match="nope"):
        cancel_in_store(orch.store, "nope", reason="test", grace=1)


def test_a_stall_that_recovers_goes_back_to_running(orchestrators, tmp_path):
    """Defect: after SIGCONT the mirror kept its flag and the finished row kept "heartbeat
    lost". Now: mission_stall then mission_recovered, no stale reason."""
    orch = orchestrators(2, heartbeat_secs=0.2)
    gate, started = tmp_path / "gate", tmp_path / "started"
    mission = one_step("frozen for a while", Gated(gate, started))
    handle = orch.run_async(mission)
    wait_for(started.exists, 30, "the step to start")
    worker = psutil.Process(handle.pid)
    suspend_outside_write(worker, orch.store.db_path)
    try:
        wait_for(lambda: orch.reconcile(600, heartbeat_timeout_secs=1.0), 20, "the stall flag")
        assert (mission.status, mission.stall_reason) == ("running", "no_heartbeat")
    finally:
        worker.resume()

    # Nobody polls: the watcher sees the heartbeat again.
    wait_for(lambda: mission.stall_reason is None, 10, "the mirror to recover")
    assert mission.status == "running"
    row = orch.status().set_index("id").loc[mission.id]
    assert row["status"] == "running" and row["stall_reason"] is None
    gate.touch()
    assert handle.wait(timeout=30).status == "succeeded"
    names = event_names(orch.store.root, mission.id)
    assert names.index("mission_stall") < names.index("mission_recovered")
    assert names.count("mission_done") == 1
    final = orch.status().set_index("id").loc[mission.id]
    assert final["status"] == "succeeded" and final["stall_reason"] is None


def test_forget_and_clear_finished(orchestrators, store_dir, tmp_path):
    orch = orchestrators(2)
    gate = tmp_path / "gate"
    done = [one_step(f"done {i}", echo) for i in range(3)]
    for mission in done:
        orch.submit(mission)
    orch.run_all()
    alive = one_step("still running", Gated(gate, tmp_path / "started"))
    orch.run_async(alive)
    wait_for((tmp_path / "started").exists, 30, "the running mission's step")

    assert orch.forget(done[0].id) == [done[0].id]
    assert done[0].id not in orch.missions and done[0] not in orch.completed
    assert not (store_dir / "logs" / f"{done[0].id}.log").exists()
    assert done[0].id not in set(orch.status()["id"])
    assert orch.forget(older_than=datetime.timedelta(hours=1)) == []  # all are recent
    with pytest.raises(ValueError, match="unknown status 'finished'"):
        orch.forget(statuses=["finished"])
    assert orch.forget(alive.id) == []  # never a mission that has not ended

    assert sorted(orch.clear_finished()) == sorted(m.id for m in done[1:])
    assert list(orch.status()["id"]) == [alive.id]
    assert {e["mission_id"] for e in store_events(store_dir)} == {alive.id}
    gate.touch()
    orch.wait(alive.id, 30)


def test_decide_and_explain_refuse_what_they_cannot_do(orchestrators, tmp_path):
    orch = orchestrators(2)
    gate = tmp_path / "gate"
    mission = one_step("busy", Gated(gate, tmp_path / "started"))
    orch.run_async(mission)
    wait_for((tmp_path / "started").exists, 30, "the step to start")

    with pytest.raises(ValueError, match="retry, skip, abort"):
        orch.decide(mission.id, "maybe")
    with pytest.raises(MissionError, match="not waiting for a decision"):
        orch.decide(mission.id, "retry")
    with pytest.raises(MissionError, match="not waiting"):
        orch.explain(mission.id)
    with pytest.raises(KeyError, match="nope"):
        orch.decide("nope", "skip")
    assert orch.status().set_index("id").loc[mission.id, "waiting_on"] is None
    gate.touch()
    orch.wait(mission.id, 30)
    with pytest.raises(MissionError, match="not waiting"):
        orch.decide(mission.id, "skip")


def test_status_answers_while_a_stopped_worker_holds_the_store(orchestrators, tmp_path):
    """12.6: status() needs no lock a blocked writer holds; cancel() frees the store."""
    orch = orchestrators(2, cancel_grace_secs=1.0)
    gate, started = tmp_path / "gate", tmp_path / "started"
    mission = one_step("holder", Gated(gate, started))
    orch.run_async(mission)
    wait_for(started.exists, 30, "the step to start")
    pid = orch.store.row(mission.id)["pid"]
    holder = subprocess.Popen(  # a process that holds the write lock, as a stopped worker would
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            " c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(60)",
            str(orch.store.db_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        # Answered while the holder still holds the lock (it holds it for 60 s): a read
        # that waited for the write lock would still be waiting, or fail.
        frame = orch.status()
        assert holder.poll() is None
        assert frame.set_index("id").loc[mission.id, "status"] == "running"
        # A write gives up with a StoreError naming the store, before the holder lets go.
        with pytest.raises(StoreError, match=str(orch.store.db_path.parent)):
            orch.submit(one_step("blocked", echo))
        assert holder.poll() is None
        assert orch.poll_async().still_running == 1  # reads need no write lock
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(pid).is_running()
    gate.touch()
    orch.wait(mission.id, 30)
