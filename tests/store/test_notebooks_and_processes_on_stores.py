"""Notebooks and processes on real SQLite stores: two kernels (child processes) each keep
their own store and a restarted one reattaches, a worker stopped inside a store write never
freezes reconcile()/submit(), and a damaged database beside mission files is named, left
alone and repairable from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from support.cli import run_cli
from support.executors import echo, touch
from support.faults import BulkyChatter, stop_inside_write
from support.runtime import TESTS_DIR, one_step, wait_for

from mission_widgets import MissionOrchestrator
from mission_widgets.runtime.store import MissionStore, StoreError

NOTEBOOK_KERNEL = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import MissionOrchestrator
    from support.executors import Gated
    from support.runtime import one_step, wait_for

    gate, action = sys.argv[2], sys.argv[3]
    orch = MissionOrchestrator(1)  # no store=: the notebook's own store
    out = {"store": str(orch.store.root), "seen": sorted(orch.status()["id"])}
    if action == "submit":
        running = one_step("first of this notebook", Gated(gate, gate + ".started"))
        queued = one_step("queued in this notebook", Gated(gate))
        orch.run_async(running)
        orch.submit(queued)  # queued: the kernel dies before its run_all()
        wait_for(lambda: os.path.exists(gate + ".started"), 60, "the first mission")
        out["ids"] = [running.id, queued.id]
        print(json.dumps(out), flush=True)
        os._exit(0)  # the kernel dies: a running worker and a queued mission are left
    if action == "finish":
        out["adopted"] = [m.id for m in orch.pending_queue]
        orch.start_queued()  # re-running the notebook's cells
        wait_for(lambda: not orch.active, 90, "the adopted missions to end")
        frame = orch.status().set_index("id")
        out["statuses"] = {i: str(s) for i, s in frame["status"].items()}
    print(json.dumps(out), flush=True)
    orch.close()
    """
)


def notebook_kernel(tmp_path, notebook: str, gate, action: str) -> dict:
    """Run one 'kernel' of ``notebook`` (JPY_SESSION_NAME, as Jupyter Server sets it)."""
    env = {k: v for k, v in os.environ.items() if k != "MISSION_WIDGETS_STORE"}
    env.update(JPY_SESSION_NAME=notebook, XDG_STATE_HOME=str(tmp_path / "state"))
    script = tmp_path / "kernel.py"
    script.write_text(NOTEBOOK_KERNEL)
    done = subprocess.run(
        [sys.executable, str(script), str(TESTS_DIR), str(gate), action],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_notebooks_keep_apart_and_a_restarted_one_reattaches(tmp_path, no_worker_left):
    gate = tmp_path / "gate"
    first = notebook_kernel(tmp_path, str(tmp_path / "a.ipynb"), gate, "submit")
    running, queued = first["ids"]
    assert str(tmp_path / "state") in first["store"]

    other = notebook_kernel(tmp_path, str(tmp_path / "b.ipynb"), tmp_path / "b-gate", "look")
    assert other["store"] != first["store"]
    assert other["seen"] == []  # notebook B sees nothing of notebook A
    # ... and did not adopt A's queue (nothing ran it meanwhile).
    assert not os.path.exists(str(gate) + ".started.2")
    queued_row = MissionStore(first["store"], create=False).row(queued)  # reads, adopts nothing
    assert queued_row["started_at"] is None

    touch(gate)
    restarted = notebook_kernel(tmp_path, str(tmp_path / "a.ipynb"), gate, "finish")
    assert restarted["store"] == first["store"]
    assert set(restarted["seen"]) == {running, queued}
    assert restarted["adopted"] == [queued]
    assert restarted["statuses"] == {running: "succeeded", queued: "succeeded"}


def test_a_worker_stopped_inside_a_write_never_freezes_the_kernel(orchestrators, tmp_path):
    orch = orchestrators(2, cancel_grace_secs=1.0)
    chatty = one_step("writes a lot", BulkyChatter(tmp_path / "gate"))
    handle = orch.run_async(chatty)
    wait_for(lambda: handle.pid, 30, "the worker's pid")
    worker = psutil.Process(handle.pid)
    stop_inside_write(worker, orch.store.db_path)
    try:
        began = time.monotonic()
        assert chatty.id in set(orch.status()["id"])  # answers at once
        assert time.monotonic() - began < 2

        # reconcile() answers within a few seconds: it flags the silent worker, or says
        # who holds the store (pid and mission), never a bare "database is locked".
        began = time.monotonic()
        try:
            orch.reconcile(600, heartbeat_timeout_secs=0.5)
        except StoreError as exc:
            assert str(worker.pid) in str(exc) and chatty.id in str(exc), str(exc)
        assert time.monotonic() - began < 10

        began = time.monotonic()
        with pytest.raises(StoreError) as raised:
            orch.submit(one_step("late", echo))
        assert time.monotonic() - began < 10
        assert str(worker.pid) in str(raised.value) and chatty.id in str(raised.value)

        assert orch.cancel(chatty.id) is True  # frees the store
    finally:
        if worker.is_running():
            worker.resume()
    assert chatty.status == "cancelled"
    late = one_step("after the cancel", echo)
    orch.run_async(late)
    assert orch.wait(late.id, 30).status == "succeeded"


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage"])
def test_a_damaged_database_beside_mission_files_from_the_command_line(
    orchestrators, store_dir, tmp_path, damage
):
    orch = orchestrators(2)
    missions = [one_step(f"kept {i}", echo) for i in range(3)]
    orch.run_all()  # nothing queued yet: a no-op
    for mission in missions:
        orch.run_async(mission)
    for mission in missions:
        assert orch.wait(mission.id, 30).status == "succeeded"
    orch.close()
    db = store_dir / "store.sqlite"
    for suffix in ("-wal", "-shm"):
        (store_dir / f"store.sqlite{suffix}").unlink(missing_ok=True)
    if damage == "missing":
        db.unlink()
    elif damage == "empty":
        db.write_bytes(b"")
    else:
        db.write_bytes(b"this is not a database\n" * 200)
    before = db.read_bytes() if db.exists() else None

    with pytest.raises(StoreError, match="store.sqlite"):
        MissionOrchestrator(2, store=store_dir)
    status = run_cli(tmp_path, "status", "--store", str(store_dir))
    assert status.returncode == 2 and "Traceback" not in status.stderr, status.stderr
    assert "store.sqlite" in status.stderr and "repair" in status.stderr, status.stderr
    assert (db.read_bytes() if db.exists() else None) == before  # nothing overwritten

    check = run_cli(tmp_path, "store", "check", "--store", str(store_dir))
    assert check.returncode == 1, check.stdout + check.stderr
    repair = run_cli(tmp_path, "store", "repair", "--store", str(store_dir))
    assert repair.returncode == 0, repair.stdout + repair.stderr
    fresh = orchestrators(2)
    frame = fresh.status().set_index("id")
    assert {m.id for m in missions} <= set(frame.index)
    assert all(frame.loc[m.id, "status"] == "succeeded" for m in missions)
