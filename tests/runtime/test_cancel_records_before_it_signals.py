"""Record first, then act: ``cancel()`` writes ``cancelled`` to the store before it signals
the worker. A kernel killed between the two leaves the mission ``cancelled`` (never "failed:
SIGTERM" or "gone without a final event"), and the worker, finding its row ended, stops
itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from support.runtime import TESTS_DIR, store_events, wait_for, worker_processes

from mission_widgets.runtime.store import MissionStore

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
