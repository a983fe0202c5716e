"""A vanished row is an ended mission: nothing another process does to the store wedges an
orchestrator.

Real worker processes on a real store. Another process loops ``forget(older_than=0)`` and
``mission-widgets prune`` on the store, and the owner's own ``clear_finished()`` (the
panel's button) runs in a loop, all racing missions as they end: every mission still ends
in the owner's mirror, frees its window slot, and ``wait()`` returns.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from support.executors import echo
from support.runtime import one_step

from mission_widgets.orchestrator.mirror import VANISHED

ROUNDS = 50

RACER = textwrap.dedent(
    """
    import os, sys
    from mission_widgets import MissionOrchestrator
    from mission_widgets.cli import main
    store, stop = sys.argv[1], sys.argv[2]
    other = MissionOrchestrator(store=store)
    n = 0
    while not os.path.exists(stop):
        other.forget(older_than=0)
        n += 1
        if n % 5 == 0:
            main(["prune", "--older-than", "0s", "--store", store])
    other.close()
    """
)


def test_forget_prune_and_clear_finished_racing_ends_never_wedge_the_owner(
    orchestrators, store_dir, tmp_path
):
    orch = orchestrators(1)  # max_concurrent=1: a wedged slot would hold b back for good
    stop, errors = tmp_path / "stop", tmp_path / "racer.err"
    with open(errors, "wb") as err:
        racer = subprocess.Popen(
            [sys.executable, "-c", RACER, str(store_dir), str(stop)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    done = threading.Event()

    def clear_in_a_loop() -> None:
        while not done.is_set():
            orch.clear_finished()

    clearer = threading.Thread(target=clear_in_a_loop, daemon=True)
    clearer.start()
    wedged = vanished = 0
    try:
        for n in range(ROUNDS):
            a, b = one_step(f"a {n}", echo), one_step(f"b {n}", echo)
            orch.submit(a)
            orch.submit(b)
            orch.start_queued()
            try:
                ended = orch.wait(b.id, timeout=60)
            except TimeoutError:
                wedged += 1
                continue
            assert ended.is_finished and b not in orch.running
            vanished += sum(m.error == VANISHED for m in (a, b))
    finally:
        done.set()
        clearer.join(30)
        stop.touch()
        racer.wait(60)
    assert racer.returncode == 0, errors.read_text()
    assert wedged == 0, f"{wedged} of {ROUNDS} rounds wedged ({vanished} missions vanished)"
    assert orch.running == [] and orch.pending_queue == []
