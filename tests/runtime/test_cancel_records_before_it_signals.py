"""Record first, then act: ``cancel()`` writes ``cancelled`` to the store before it signals
the worker. A kernel killed between the two leaves the mission ``cancelled`` (never "failed:
SIGTERM" or "gone without a final event"), and the worker, finding its row ended, stops
itself."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest
from support.runtime import TESTS_DIR, store_events, wait_for, worker_processes

from mission_widgets.runtime.store import MissionStore, StoreError

ROUNDS = 20
AT_ONCE = 4

#: A kernel that starts a mission, then cancels it; the test kills it in cancel(), at the
#: moment the worker would be signalled (its _terminate waits there for the kill).
KERNEL = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import Mission, MissionOrchestrator, MissionStep
    from support.executors import Gated, touch

    store, gates, name = sys.argv[2:5]
    orch = MissionOrchestrator(2, store=store, heartbeat_secs=0.2)
    started = os.path.join(gates, f"started-{name}")
    never = os.path.join(gates, "never")
    mission = Mission("cancelled", steps=[MissionStep("s", "s", Gated(never, started))])
    orch.run_async(mission)
    while not os.path.exists(started):
        time.sleep(0.02)

    def signal_worker(mission_id, row):  # the gap between record and signal
        touch(os.path.join(gates, f"in-cancel-{name}"), mission_id)
        time.sleep(600)

    orch._terminate = signal_worker
    orch.cancel(mission.id)
    """
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # many rounds of real processes, on a busy machine too
def test_a_kernel_killed_inside_cancel_leaves_the_mission_cancelled(store_dir, tmp_path):
    MissionStore(store_dir)  # made once, before the kernels race to make it
    gates = tmp_path / "gates"
    gates.mkdir()
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    ended = {}
    for start in range(0, ROUNDS, AT_ONCE):
        names = [str(i) for i in range(start, min(ROUNDS, start + AT_ONCE))]
        kernels = {
            name: subprocess.Popen(
                [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(gates), name]
            )
            for name in names
        }
        for name, kernel in kernels.items():
            marker = gates / f"in-cancel-{name}"
            wait_for(lambda m=marker, k=kernel: m.exists() or k.poll() is not None, 120, "cancel")
            assert kernel.poll() is None, f"kernel {name} exited with {kernel.returncode}"
            os.kill(kernel.pid, signal.SIGKILL)  # killed inside cancel()
            kernel.wait()
            ended[marker.read_text()] = name
    store = MissionStore(store_dir, create=False)
    for mission_id in ended:
        # Its worker finds its row ended and stops by itself: nobody signalled it.
        wait_for(lambda i=mission_id: not worker_processes(i), 60, "the worker to stop")
    rows = store.rows_by_id(ended)
    statuses = {mission_id: rows[mission_id]["status"] for mission_id in ended}
    assert list(statuses.values()) == ["cancelled"] * ROUNDS, statuses
    assert all(rows[i]["error"] == "cancelled by user" for i in ended)
    events = store_events(store_dir)
    for mission_id in ended:
        dones = [
            e for e in events if e["mission_id"] == mission_id and e["event"] == "mission_done"
        ]
        assert [e["payload"]["status"] for e in dones] == ["cancelled"], mission_id  # ended once


def _held_store_and_running_mission(orchestrators, tmp_path):
    """A running own mission (a worker waiting on a gate that never opens) and an sqlite3
    connection of the test, outside the orchestrator, holding the store's write lock."""
    from support.executors import Gated
    from support.runtime import one_step

    orch = orchestrators(1, cancel_grace_secs=1.0)
    started = tmp_path / "started"
    mission = one_step("cancelled under a held lock", Gated(tmp_path / "never", started))
    handle = orch.run_async(mission)
    wait_for(started.exists, 60, "the step starts")
    holder = sqlite3.connect(orch.store.db_path, isolation_level=None, timeout=60)
    holder.execute("BEGIN IMMEDIATE")
    return orch, mission, handle, holder


def _cancel_in_a_thread(orch, mission_id):
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(ok=orch.cancel(mission_id)))
    thread.start()
    return thread, answer


def test_cancel_waits_for_a_held_lock_and_records_before_it_signals(orchestrators, tmp_path):
    orch, mission, handle, holder = _held_store_and_running_mission(orchestrators, tmp_path)
    refused = threading.Event()
    record = orch.store.finish_if_unfinished

    def spy(*args, **kwargs):  # the real record; says when the held lock refused one try
        try:
            return record(*args, **kwargs)
        except StoreError:
            refused.set()
            raise

    orch.store.finish_if_unfinished = spy
    terminate, recorded_when_stopped = orch._terminate, []

    def stop(mission_id, row):  # the real stop; notes whether the cancel was recorded
        recorded_when_stopped.append(orch.store.row(mission_id)["finished_at"] is not None)
        terminate(mission_id, row)

    orch._terminate = stop
    thread, answer = _cancel_in_a_thread(orch, mission.id)
    try:
        assert refused.wait(60), "cancel never tried to record"
    finally:
        holder.execute("COMMIT")
        holder.close()
    thread.join(60)
    assert answer == {"ok": True}
    assert recorded_when_stopped == [True]  # retried the record, then stopped the worker
    row = orch.store.row(mission.id)
    assert (row["status"], row["error"]) == ("cancelled", "cancelled by user")
    wait_for(lambda: not psutil.pid_exists(handle.pid), 60, "the worker stops")


def test_a_cancel_the_store_refuses_past_its_retries_still_ends_cancelled(
    orchestrators, tmp_path, monkeypatch
):
    from mission_widgets.orchestrator import control

    monkeypatch.setattr(control, "CANCEL_RECORD_SECS", 0.0)  # one try, then stop the worker
    orch, mission, handle, holder = _held_store_and_running_mission(orchestrators, tmp_path)
    thread, answer = _cancel_in_a_thread(orch, mission.id)
    try:
        wait_for(lambda: not psutil.pid_exists(handle.pid), 60, "the worker is stopped")
        thread.join(60)
        assert answer == {"ok": True}
        assert orch.store.row(mission.id)["finished_at"] is None  # the store took nothing
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert orch.wait(mission.id, timeout=60).status == "cancelled"
    row = orch.store.row(mission.id)
    assert (row["status"], row["error"]) == ("cancelled", "cancelled by user")
