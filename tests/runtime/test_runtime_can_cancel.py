"""``orch.can_cancel()`` / ``cancellable()``: the backend that runs a mission, found from its
store row, says whether this process can still stop it (Cancel only where a
mission can still be cancelled)."""

from __future__ import annotations

import subprocess
import sys
import time

from support.runtime import one_step, wait_for
from support.widget_tasks import hang_quietly as hang

from mission_widgets import MissionOrchestrator
from mission_widgets.orchestrator.cancellation import can_cancel
from mission_widgets.runtime.processes import owner_token, process_start_time


def _dead_process() -> tuple[int, float | None]:
    """The pid and start time of a process that has exited (a token no live process has)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start_time(proc.pid)
    proc.wait()
    return proc.pid, started or time.time()


def test_queued_and_running_missions_can_be_cancelled_finished_ones_not(orchestrators):
    orch: MissionOrchestrator = orchestrators(max_concurrent=1)
    running = orch.run_async(one_step("hangs", hang))
    queued = one_step("waits its turn", hang)
    orch.submit(queued)
    wait_for(lambda: orch.store.row(running.mission_id)["pid"] is not None, 20, "a worker")
    assert orch.can_cancel(running.mission_id)
    assert orch.can_cancel(queued.id)
    assert orch.cancellable([running.mission_id, queued.id]) == {running.mission_id, queued.id}
    orch.cancel(running.mission_id)
    assert not orch.can_cancel(running.mission_id)
    assert orch.cancellable([running.mission_id, queued.id]) == {queued.id}


def test_a_thread_mission_of_a_dead_kernel_cannot_be_cancelled_from_here(store_dir):
    from mission_widgets.runtime.store import MissionStore

    store = MissionStore(store_dir)
    dead_pid, dead_start = _dead_process()
    dead_owner = f"{dead_pid}:{dead_start}"
    store.register("m_thread", "runs in another kernel", backend="thread", owner=dead_owner)
    store.set_process("m_thread", dead_pid, dead_start)
    row = store.row("m_thread")
    assert row is not None and row["finished_at"] is None
    # Nothing here runs its thread and the kernel that did is gone: no one can stop it.
    assert not can_cancel(row, store)
    # The same row owned by a live process: that owner honours a cancel request.
    assert can_cancel({**row, "owner": owner_token()}, store)
    # A worker process (subprocess backend) is stopped from any process by its pid.
    assert can_cancel({**row, "backend": "subprocess"}, store)
    assert not can_cancel({**row, "finished_at": time.time()}, store)
