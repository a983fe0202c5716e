"""Atomic claims: a queued row is started by exactly one process, however many
orchestrators race for it -- processes adopting a dead kernel's queue, two kernels on one
store, a clone in the same process. Counted from the store: one mission_start per mission."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import textwrap

from support.executors import echo
from support.runtime import TESTS_DIR, one_step, store_events, wait_for

QUEUE_AND_EXIT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from support.executors import echo, touch
    from mission_widgets import Mission, MissionOrchestrator, MissionStep

    store, out, count = sys.argv[2], sys.argv[3], int(sys.argv[4])
    orch = MissionOrchestrator(2, store=store)
    ids = []
    for i in range(count):
        mission = Mission(f"queued {i}", steps=[MissionStep("one", "first", echo)],
                          backoff_factor=0)
        orch.submit(mission)
        ids.append(mission.id)
    touch(out, json.dumps(ids))
    # Exits with every mission queued, never started: a kernel that died.
    """
)

RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import MissionOrchestrator

    store, go, out = sys.argv[2:5]
    while not Path(go).exists():  # start together
        time.sleep(0.005)
    orch = MissionOrchestrator(3, store=store)
    adopted = [m.id for m in orch.pending_queue]
    orch.run_all()
    Path(out).write_text(json.dumps(adopted))
    orch.close()
    """
)


def starts_per_mission(store_dir) -> collections.Counter:
    return collections.Counter(
        e["mission_id"] for e in store_events(store_dir) if e["event"] == "mission_start"
    )


def queue_and_exit(tmp_path, store_dir, count: int) -> list[str]:
    script, ids_file = tmp_path / "queueing_kernel.py", tmp_path / "ids.json"
    script.write_text(QUEUE_AND_EXIT)
    subprocess.run(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(ids_file), str(count)],
        check=True,
        timeout=60,
    )
    return json.loads(ids_file.read_text())


def test_racing_processes_adopt_a_dead_kernels_queue_once(tmp_path, store_dir):
    """Defect: two orchestrators opening a store at once both adopted a dead kernel's queue
    and every mission ran twice."""
    ids = queue_and_exit(tmp_path, store_dir, 8)
    script, go = tmp_path / "racer.py", tmp_path / "go"
    script.write_text(RACER)
    outs = [tmp_path / f"racer{i}.json" for i in range(4)]
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(go), str(out)]
        )
        for out in outs
    ]
    try:
        go.touch()
        for racer in racers:
            assert racer.wait(timeout=120) == 0
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    adopted = [json.loads(out.read_text()) for out in outs]

    assert sorted(i for each in adopted for i in each) == sorted(ids)  # each adopted once
    assert starts_per_mission(store_dir) == dict.fromkeys(ids, 1)
    done = [e for e in store_events(store_dir) if e["event"] == "mission_done"]
    assert sorted(e["mission_id"] for e in done) == sorted(ids)
    assert all(e["payload"]["status"] == "succeeded" for e in done)


QUEUE_AND_WAIT = QUEUE_AND_EXIT.replace(
    "# Exits with every mission queued, never started: a kernel that died.\n",
    "from support.executors import wait_for_path\n"
    "wait_for_path(out + '.go')  # a live kernel, its queue not started yet\n"
    "assert [m.status for m in orch.run_all()] == ['succeeded'] * count\n",
)
assert QUEUE_AND_WAIT != QUEUE_AND_EXIT


def test_a_live_kernels_queue_is_left_alone(orchestrators, store_dir, tmp_path):
    script, ids_file = tmp_path / "owner.py", tmp_path / "ids.json"
    script.write_text(QUEUE_AND_WAIT)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(ids_file), "3"]
    )
    try:
        wait_for(ids_file.exists, 60, "the owner to queue its missions")
        ids = json.loads(ids_file.read_text())

        other = orchestrators(2)  # the same store, while the owner lives

        assert other.pending_queue == []
        assert other.start_queued() == []
        (tmp_path / "ids.json.go").touch()
        assert owner.wait(timeout=120) == 0
    finally:
        owner.kill()
        owner.wait()
    assert starts_per_mission(store_dir) == dict.fromkeys(ids, 1)


def test_a_clone_and_its_original_start_each_mission_once(orchestrators, store_dir):
    orch = orchestrators(2)
    missions = [one_step(f"shared {i}", echo) for i in range(4)]
    for mission in missions:
        orch.submit(mission)
    twin = orchestrators.track(orch.clone())
    assert twin.pending_queue == missions == orch.pending_queue

    orch.start_queued()
    twin.start_queued()

    wait_for(
        lambda: (
            sum(starts_per_mission(store_dir).values()) >= 4 and not orch.active and not twin.active
        ),
        60,
        "both to drain",
    )
    assert starts_per_mission(store_dir) == {m.id: 1 for m in missions}
    frame = orch.status().set_index("id")
    assert (frame.loc[[m.id for m in missions], "status"] == "succeeded").all()
