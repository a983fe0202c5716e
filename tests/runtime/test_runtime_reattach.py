"""Reattach: a kernel submits missions and exits; another Python process on the same store
finds them, with their history, follows the running one to its end, and marks dead ones."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import psutil
from support.executors import Chatter, echo, touch
from support.runtime import TESTS_DIR, is_alive, one_step, store_events, wait_for

from mission_widgets import MissionOrchestrator
from mission_widgets.runtime.store import MissionStore

FIRST_KERNEL = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from support.executors import Gated, echo, touch, wait_for_path
    from mission_widgets import Mission, MissionOrchestrator, MissionStep

    store, gate, out = sys.argv[2:5]
    orch = MissionOrchestrator(2, store=store)
    quick = Mission(
        "quick",
        steps=[
            MissionStep("one", "first", echo),
            MissionStep("two", "second", echo, depends_on=["one"]),
        ],
        backoff_factor=0,
    )
    started = gate + ".started"
    slow = Mission(
        "slow", steps=[MissionStep("wait", "wait", Gated(gate, started))], backoff_factor=0
    )
    quick_handle = orch.run_async(quick)
    slow_handle = orch.run_async(slow)
    assert quick_handle.wait(timeout=60).status == "succeeded"
    wait_for_path(started, 60)  # the slow mission runs its step
    touch(out, json.dumps({"quick": quick.id, "slow": slow.id, "slow_pid": slow_handle.pid}))
    # Exits now, like a restarted kernel, without waiting for the slow mission.
    """
)

SECOND_KERNEL = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from support.executors import touch
    from mission_widgets import MissionOrchestrator

    store, ids_file, first_report, final_report = sys.argv[2:6]
    ids = json.loads(Path(ids_file).read_text())
    orch = MissionOrchestrator(2, store=store)

    def report(path):
        missions = {name: orch.get(ids[name]) for name in ("quick", "slow")}
        touch(path, json.dumps({
            name: {
                "status": m.status,
                "error": m.error,
                "events": [e["event"] for e in m.audit_log],
                "steps": [[s.id, s.status, s.result] for s in m.steps or []],
                "running": m in orch.running,
                "completed": m in orch.completed,
            }
            for name, m in missions.items()
        }))

    report(first_report)
    orch.wait(ids["slow"], timeout=60)
    report(final_report)
    """
)


def run_first_kernel(tmp_path, store_dir, gate):
    script = tmp_path / "first_kernel.py"
    script.write_text(FIRST_KERNEL)
    ids_file = tmp_path / "ids.json"
    subprocess.run(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(gate), str(ids_file)],
        check=True,
        timeout=60,
    )
    return json.loads(ids_file.read_text()), ids_file


def test_second_process_reattaches_to_running_and_finished_missions(tmp_path, store_dir):
    gate = tmp_path / "gate"
    ids, ids_file = run_first_kernel(tmp_path, store_dir, gate)
    worker = psutil.Process(ids["slow_pid"])
    assert is_alive(worker)  # the mission outlived the kernel that started it

    script = tmp_path / "second_kernel.py"
    script.write_text(SECOND_KERNEL)
    first, final = tmp_path / "first.json", tmp_path / "final.json"
    second = subprocess.Popen(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(ids_file), first, final]
    )
    try:
        wait_for(
            lambda: first.exists() or second.poll() is not None,
            30,
            what="the second process to attach",
        )
        assert first.exists(), f"the second process exited with {second.returncode}"
        seen = json.loads(first.read_text())
        quick, slow = seen["quick"], seen["slow"]
        assert quick["status"] == "succeeded" and quick["completed"] and not quick["running"]
        assert quick["steps"] == [["one", "done", "did: first"], ["two", "done", "did: second"]]
        assert quick["events"][0] == "mission_start" and quick["events"][-1] == "mission_done"
        assert quick["events"].count("step_done") == 2
        assert slow["status"] == "running" and slow["running"] and not slow["completed"]
        assert slow["steps"] == [["wait", "running", None]]
        assert slow["events"] == ["mission_start", "mission_planned", "step_start"]

        touch(gate)
        assert second.wait(timeout=60) == 0
    finally:
        touch(gate)  # whatever happened, let the slow mission end
        if second.poll() is None:
            second.kill()
            second.wait()
    done = json.loads(final.read_text())["slow"]
    assert done["status"] == "succeeded" and done["completed"] and not done["running"]
    assert done["steps"] == [["wait", "done", "released"]]
    assert done["events"][-1] == "mission_done"
    wait_for(lambda: not is_alive(worker), 10, what="the slow worker to exit")


def test_worker_that_died_unwatched_is_marked_failed(tmp_path, store_dir, orchestrators):
    gate = tmp_path / "gate"  # never opened
    ids, _ = run_first_kernel(tmp_path, store_dir, gate)
    worker = psutil.Process(ids["slow_pid"])
    worker.kill()
    wait_for(lambda: not is_alive(worker), 10, what="the worker to die")

    orch = orchestrators(2)  # the restarted kernel
    slow, quick = orch.get(ids["slow"]), orch.get(ids["quick"])
    assert quick.status == "succeeded"
    result = orch.poll_async()

    assert result.completed == [slow]
    assert slow.status == "failed"
    assert str(ids["slow_pid"]) in slow.error and "without a final event" in slow.error
    assert orch.running == []
    row = orch.status().set_index("id").loc[ids["slow"]]
    assert row["status"] == "failed" and str(ids["slow_pid"]) in row["error"]


QUEUEING_KERNEL = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from support.executors import echo, touch
    from mission_widgets import Mission, MissionOrchestrator, MissionStep

    store, out = sys.argv[2:4]
    orch = MissionOrchestrator(2, store=store)
    good = Mission("queued good", steps=[MissionStep("one", "first", echo)], backoff_factor=0)
    bad = Mission("queued bad", steps=[MissionStep("one", "first", echo)], backoff_factor=0)
    orch.submit(good).submit(bad)
    touch(out, json.dumps({"good": good.id, "bad": bad.id}))
    # Exits with both missions queued, never started.
    """
)


def test_queue_of_an_exited_kernel_is_adopted(tmp_path, store_dir, orchestrators):
    script = tmp_path / "queueing_kernel.py"
    script.write_text(QUEUEING_KERNEL)
    ids_file = tmp_path / "ids.json"
    subprocess.run(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(ids_file)],
        check=True,
        timeout=60,
    )
    ids = json.loads(ids_file.read_text())
    bad_file = MissionStore(store_dir).mission_file(ids["bad"])
    bad_file.write_bytes(b"not a pickle at all")

    fresh = orchestrators(2)  # attaches after the file went bad

    assert [m.id for m in fresh.pending_queue] == [ids["good"]]
    bad = fresh.get(ids["bad"])  # known at once, not only after a poll
    assert bad.status == "failed" and str(bad_file) in bad.error
    assert bad in fresh.completed
    done = fresh.run_all()
    assert [m.id for m in done] == [ids["good"]]
    assert done[0].status == "succeeded" and done[0].steps[0].result == "did: first"
    rows = fresh.status().set_index("id")
    assert rows.loc[ids["good"], "status"] == "succeeded"
    assert rows.loc[ids["bad"], "status"] == "failed"


def test_missions_of_another_orchestrator_are_mirrored_once(orchestrators, store_dir):
    runner, watcher = orchestrators(2), orchestrators(2)
    missions = [one_step(f"elsewhere {i}", echo) for i in range(2)]
    for mission in missions:
        runner.submit(mission)
    runner.run_all()

    result = watcher.poll_async()

    assert sorted(m.id for m in watcher.completed) == sorted(m.id for m in missions)
    for mission in missions:
        mirror = watcher.get(mission.id)
        assert mirror is not mission and mirror.status == "succeeded"
        assert [e["seq"] for e in mirror.audit_log] == [
            e["seq"] for e in store_events(store_dir) if e["mission_id"] == mission.id
        ]
        assert mirror.steps[0].result == f"did: work of {mission.goal}"
    assert result.still_running == 0


def test_attaching_while_missions_run_mirrors_every_event_once(orchestrators, store_dir, tmp_path):
    gate = tmp_path / "gate"
    runner = orchestrators(3)
    missions = [one_step(f"chatter {i}", Chatter(gate)) for i in range(3)]
    for mission in missions:
        runner.run_async(mission)

    def ticking():
        ticks = [e["mission_id"] for e in store_events(store_dir) if e["event"] == "tick"]
        return all(ticks.count(m.id) >= 5 for m in missions)

    wait_for(ticking, what="every mission to emit events")
    try:
        for _ in range(40):  # each attach races the workers' writes
            kernel = MissionOrchestrator(3, store=store_dir)
            kernel.poll_async()
            for mission in missions:
                seqs = [e["seq"] for e in kernel.get(mission.id).audit_log]
                assert seqs, f"no history for {mission.id}"
                stored = [
                    e["seq"]
                    for e in store_events(store_dir)
                    if e["mission_id"] == mission.id and e["seq"] <= seqs[-1]
                ]
                assert seqs == stored  # every event once, in order, none missing
            kernel.close()
    finally:
        gate.touch()
    for mission in missions:
        assert runner.wait(mission.id, timeout=30).status == "succeeded"
