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

from support.executors import Gated, echo, touch
from support.runtime import one_step, wait_for

from mission_widgets.orchestrator.mirror import VANISHED
from mission_widgets.runtime.store import MissionStore

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


def test_a_mission_forgotten_elsewhere_before_its_end_was_read_is_gone_everywhere(
    orchestrators, store_dir, tmp_path
):
    """Its worker ended it in the store and another process forgot it before the owner read
    the end: the owner ends it (wait() returns), then counts(), status() and completed agree
    that it is gone."""
    orch = orchestrators(1)
    gate, started = tmp_path / "gate", tmp_path / "started"
    mission = one_step("forgotten", Gated(gate, started=started))
    orch.run_async(mission)
    wait_for(started.exists, 60, "the step starts")
    other = MissionStore(store_dir)  # the other process's view
    with orch._lock:  # the owner reads nothing until its row is gone
        touch(gate)
        wait_for(lambda: other.row(mission.id)["finished_at"] is not None, 60, "its end")
        assert other.forget([mission.id]) == [mission.id]
    assert orch.wait(mission.id, timeout=60).is_finished
    assert sum(orch.counts().values()) == 0 and len(orch.status()) == 0
    assert not orch.completed.has(mission.id) and mission.id not in orch.missions
