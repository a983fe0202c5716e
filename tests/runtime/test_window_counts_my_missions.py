"""My window counts my missions: ``max_concurrent`` limits what this orchestrator started.
Another process's long missions on the same store are mirrored here (shown, running) but
take none of my slots: my 8 short missions run 4 at a time beside them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from support.executors import GATE_TIMEOUT, touch
from support.runtime import (
    TESTS_DIR,
    BackgroundRunAll,
    max_overlap,
    one_step,
    spans,
    wait_for,
)

from mission_widgets.runtime.store import MissionStore

FOREIGN = 6
MINE = 8
LIMIT = 4

#: Another notebook: runs FOREIGN long missions on the store until the gate opens.
OTHER_KERNEL = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import Mission, MissionOrchestrator, MissionStep
    from support.executors import Gated

    store, gate, started, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    orch = MissionOrchestrator(n, store=store)
    for i in range(n):
        step = MissionStep("long", "long", Gated(gate, os.path.join(started, str(i))))
        orch.submit(Mission(f"foreign {i}", steps=[step]))
    for mission in orch.run_all():
        assert mission.status == "succeeded", (mission.id, mission.status, mission.error)
    orch.close()
    """
)


class TogetherWith:
    """Waits until ``n`` missions (files in ``folder``) have started, so that the missions
    the window lets run at once do overlap however slow the machine is."""

    def __init__(self, folder, n):
        self.folder, self.n = str(folder), n

    def __call__(self, task, session, context):
        touch(os.path.join(self.folder, f"{os.getpid()}"))
        deadline = time.monotonic() + GATE_TIMEOUT
        while len(os.listdir(self.folder)) < self.n:
            if time.monotonic() > deadline:
                raise TimeoutError("the other missions of the window never started")
            time.sleep(0.02)
        return "together"


def test_another_processes_long_missions_take_none_of_my_slots(orchestrators, store_dir, tmp_path):
    MissionStore(store_dir)
    gate, started, together = tmp_path / "gate", tmp_path / "started", tmp_path / "together"
    started.mkdir()
    together.mkdir()
    script = tmp_path / "other.py"
    script.write_text(OTHER_KERNEL)
    other = subprocess.Popen(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(gate), str(started)]
        + [str(FOREIGN)]
    )
    try:
        wait_for(lambda: len(os.listdir(started)) == FOREIGN, 120, "the foreign missions")
        orch = orchestrators(LIMIT)
        foreign = {m.id for m in orch.running}
        assert len(foreign) == FOREIGN  # shown here, running
        mine = [one_step(f"mine {i}", TogetherWith(together, LIMIT)) for i in range(MINE)]
        for mission in mine:
            orch.submit(mission)
        ran = BackgroundRunAll(orch).join(timeout=180)  # while the foreign ones still run
        assert [m.status for m in ran] == ["succeeded"] * MINE
        assert {m.id for m in orch.running} == foreign  # they were running all along
    finally:
        touch(gate)
        other.wait(timeout=120)
    assert other.returncode == 0
    intervals = spans(store_dir)
    peak = max_overlap(intervals[m.id] for m in mine)
    assert peak == LIMIT, f"{peak} of my missions ran at once, the window is {LIMIT}"
    assert max_overlap(intervals.values()) == FOREIGN + LIMIT
