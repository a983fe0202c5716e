"""A hung parallel step never keeps the process from exiting (a kernel restart, pytest's
own exit): parallel steps run on daemon threads, not on an executor joined at exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading
    from mission_widgets import Mission, MissionStep

    started = threading.Semaphore(0)
    never = threading.Event()

    def hang(task, session, context):
        started.release()
        never.wait()

    mission = Mission(
        "hangs in parallel",
        steps=[MissionStep(f"s{i}", "hangs", executor=hang, parallel=True) for i in range(2)],
    )
    threading.Thread(target=mission.run, daemon=True).start()
    for _ in range(2):
        assert started.acquire(timeout=30), "the parallel steps did not start"
    print("both steps hang; exiting", flush=True)
    """
)


def test_a_process_exits_while_parallel_steps_hang():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "both steps hang; exiting" in done.stdout
