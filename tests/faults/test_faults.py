"""Fault injection: kill -9 of kernels and workers, SIGSTOP inside a store write,
a store that turns read-only, a full disk, corrupt and missing databases, racing
orchestrators. Per fault: missions lost (submitted, never ended nor queued), run twice (more
than one ``mission_start``) and ended twice -- all must be 0. ``bench/faults_report.py`` runs
this suite and writes the table to bench/RESULTS-faults.md."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from support.executors import echo, touch
from support.faults import (
    BulkyChatter,
    GatedThenMark,
    immutable,
    record_fault,
    start_kernel,
    stop_inside_write,
    store_files,
    tally,
)
from support.runtime import TESTS_DIR, one_step, wait_for

from mission_widgets import MissionOrchestrator
from mission_widgets.runtime.store import MissionStore, StoreError, repair_store

pytestmark = pytest.mark.slow


def gated(marks, i: int, result="released"):
    return one_step(
        f"gated {i}",
        GatedThenMark(marks / "gate", marks / f"started-{i}", marks / f"done-{i}", result),
    )


def all_ended(orch: MissionOrchestrator, store_dir, ids, timeout: float = 60) -> None:
    store = MissionStore(store_dir)

    def ended():
        orch.poll_async()
        rows = store.rows_by_id(ids)
        return all(rows.get(i) and rows[i]["finished_at"] is not None for i in ids)

    wait_for(ended, timeout, f"missions {ids} end")


def started_pids(marks, n: int) -> list[int]:
    paths = [marks / f"started-{i}" for i in range(n)]
    wait_for(lambda: all(p.exists() and p.read_text() for p in paths), 60, "steps start")
    return [int(p.read_text()) for p in paths]


def test_kill_9_of_a_kernel_with_running_and_queued_missions(
    orchestrators, store_dir, marks, kernels
):
    kernel, ids = start_kernel(TESTS_DIR, store_dir, marks, n=5, max_concurrent=2)
    kernels.append(kernel)
    started_pids(marks, 2)
    kernel.kill()  # kill -9: its workers run on (own sessions), its queue is left behind
    kernel.wait(10)
    touch(marks / "gate")
    orch = orchestrators(max_concurrent=2)  # a new kernel attaches
    orch.start_queued()
    all_ended(orch, store_dir, ids, 90)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert {rows[i]["status"] for i in ids} == {"succeeded"}
    record_fault(
        "kill -9 of a kernel (2 running, 3 queued), new kernel attaches", ids, tally(store_dir, ids)
    )


def test_kill_9_of_a_kernel_running_missions_on_threads(orchestrators, store_dir, marks, kernels):
    kernel, ids = start_kernel(TESTS_DIR, store_dir, marks, n=3, max_concurrent=2, backend="thread")
    kernels.append(kernel)
    started_pids(marks, 2)
    kernel.kill()  # its threads die with it; its queue is left behind
    kernel.wait(10)
    touch(marks / "gate")
    orch = orchestrators(max_concurrent=2, backend="thread")
    orch.start_queued()
    all_ended(orch, store_dir, ids)
    rows = MissionStore(store_dir).rows_by_id(ids)
    ran_in_kernel = [i for i in ids if rows[i]["pid"] == kernel.pid]
    assert len(ran_in_kernel) == 2
    for mission_id in ran_in_kernel:
        assert rows[mission_id]["status"] == "failed"
        assert f"the kernel (pid {kernel.pid})" in rows[mission_id]["error"]
    (queued,) = set(ids) - set(ran_in_kernel)
    assert rows[queued]["status"] == "succeeded", rows[queued]["error"]
    record_fault(
        "kill -9 of a kernel running 2 missions on threads (1 queued)", ids, tally(store_dir, ids)
    )


def test_kill_9_of_workers(orchestrators, store_dir, marks):
    orch = orchestrators(max_concurrent=3)
    missions = [gated(marks, i) for i in range(3)]
    for mission in missions:
        orch.run_async(mission)
    pids = started_pids(marks, 3)
    for pid in pids[:2]:
        os.kill(pid, signal.SIGKILL)
    touch(marks / "gate")
    ids = [m.id for m in missions]
    all_ended(orch, store_dir, ids)
    rows = MissionStore(store_dir).rows_by_id(ids)
    for mission_id in ids[:2]:
        assert rows[mission_id]["status"] == "failed"
        assert "signal 9" in rows[mission_id]["error"]
    assert rows[ids[2]]["status"] == "succeeded"
    record_fault("kill -9 of 2 of 3 workers", ids, tally(store_dir, ids))


def test_sigstop_inside_a_store_write(orchestrators, store_dir, marks):
    orch = orchestrators(max_concurrent=2)
    chatty = one_step("chatters", BulkyChatter(marks / "gate"))
    calm = gated(marks, 0)
    orch.run_async(chatty)
    orch.run_async(calm)
    started_pids(marks, 1)
    wait_for(lambda: MissionStore(store_dir).row(chatty.id)["pid"], 30, "chatty worker pid")
    worker = psutil.Process(MissionStore(store_dir).row(chatty.id)["pid"])
    stop_inside_write(worker, store_dir / "store.sqlite")
    orch.status()  # reads do not wait for the lock holder
    with pytest.raises(StoreError, match=rf"{worker.pid}"):
        orch.submit(one_step("behind the lock", echo))
    assert orch.cancel(chatty.id)  # frees the store
    touch(marks / "gate")
    ids = [chatty.id, calm.id]
    all_ended(orch, store_dir, ids)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert rows[chatty.id]["status"] == "cancelled"
    assert rows[calm.id]["status"] == "succeeded"
    record_fault(
        "SIGSTOP of a worker inside a store write, then cancel", ids, tally(store_dir, ids)
    )


def test_kill_9_of_a_worker_inside_a_store_write(orchestrators, store_dir, marks):
    orch = orchestrators(max_concurrent=2)
    bulky = one_step("writes a lot", BulkyChatter(marks / "gate"))
    calm = gated(marks, 0)
    orch.run_async(bulky)
    orch.run_async(calm)
    started_pids(marks, 1)
    wait_for(lambda: MissionStore(store_dir).row(bulky.id)["pid"], 30, "bulky worker pid")
    worker = psutil.Process(MissionStore(store_dir).row(bulky.id)["pid"])
    stop_inside_write(worker, store_dir / "store.sqlite")
    worker.kill()  # dies holding the write lock, its transaction half done
    touch(marks / "gate")
    ids = [bulky.id, calm.id]
    all_ended(orch, store_dir, ids)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert rows[bulky.id]["status"] == "failed" and "signal 9" in rows[bulky.id]["error"]
    assert rows[calm.id]["status"] == "succeeded"
    record_fault("kill -9 of a worker inside a store write", ids, tally(store_dir, ids))


def test_a_store_that_turns_read_only_under_running_workers(
    orchestrators, store_dir, marks, monkeypatch
):
    monkeypatch.setenv("MISSION_WIDGETS_END_RETRY_SECS", "1")
    orch = orchestrators(max_concurrent=2)
    missions = [gated(marks, i, result=i) for i in range(2)]
    for mission in missions:
        orch.run_async(mission)
    pids = started_pids(marks, 2)
    ids = [m.id for m in missions]
    with immutable(*store_files(store_dir)):
        touch(marks / "gate")
        wait_for(
            lambda: (
                not any(
                    psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids
                )
            ),
            60,
            "workers exit",
        )
    orch.close()
    fresh = orchestrators(max_concurrent=2)  # attaches: the ends are in the workers' logs
    all_ended(fresh, store_dir, ids)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert {rows[i]["status"] for i in ids} == {"succeeded"}, [rows[i]["error"] for i in ids]
    record_fault("store read-only under 2 running workers", ids, tally(store_dir, ids))


def fill(disk) -> None:
    """Fill the disk up (a file that grows until the disk refuses). The refusal may come
    at close too (the part of the last write that did not fit is flushed again)."""
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


def test_full_disk_under_running_workers(orchestrators, small_disk, marks, monkeypatch):
    monkeypatch.setenv("MISSION_WIDGETS_END_RETRY_SECS", "120")
    store_dir = small_disk / "store"
    orch = orchestrators(max_concurrent=2, store=store_dir)
    missions = [gated(marks, i, result=i) for i in range(2)]
    for mission in missions:
        orch.run_async(mission)
    started_pids(marks, 2)
    fill(small_disk)
    touch(marks / "gate")
    wait_for(lambda: all((marks / f"done-{i}").exists() for i in range(2)), 30, "steps done")
    logs = [MissionStore(store_dir).path_of("log", m.id) for m in missions]
    wait_for(
        lambda: all("cannot take the end" in Path(log).read_text() for log in logs),
        30,
        "the workers find the store full",
    )
    (small_disk / "filler").unlink()  # space again: the workers record their ends
    ids = [m.id for m in missions]
    all_ended(orch, store_dir, ids, 120)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert {rows[i]["status"] for i in ids} == {"succeeded"}, [rows[i]["error"] for i in ids]
    record_fault("disk full under 2 running workers (4 MiB tmpfs)", ids, tally(store_dir, ids))


def ended_missions(orchestrators, store_dir, n: int) -> list[str]:
    orch = orchestrators(max_concurrent=n)
    missions = [one_step(f"quick {i}", echo) for i in range(n)]
    for mission in missions:
        orch.run_async(mission)
    ids = [m.id for m in missions]
    all_ended(orch, store_dir, ids)
    orch.close()
    return ids


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_database_loses_no_mission(orchestrators, store_dir, damage):
    ids = ended_missions(orchestrators, store_dir, 3)
    orchestrators.cleanup()
    for side in store_files(store_dir) + [store_dir / "store.sqlite-shm"]:
        with contextlib.suppress(FileNotFoundError):
            side.unlink()
    if damage == "corrupt":
        (store_dir / "store.sqlite").write_bytes(b"this is not a database" * 500)
    with pytest.raises(StoreError, match="store.sqlite"):
        MissionOrchestrator(store=store_dir)
    repair_store(store_dir)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert all(rows.get(i) and rows[i]["status"] == "succeeded" for i in ids), rows
    record_fault(f"{damage} database, repaired", ids, tally(store_dir, ids))


RACER = """
import sys
sys.path.insert(0, {tests!r})
from support.executors import touch, wait_for_path
from mission_widgets import MissionOrchestrator
touch({ready!r})
wait_for_path({go!r})
orch = MissionOrchestrator(2, store={store!r})
orch.run_all()
"""


def test_racing_orchestrators_adopt_a_dead_kernel_s_queue_once(
    orchestrators, store_dir, marks, kernels
):
    kernel, ids = start_kernel(TESTS_DIR, store_dir, marks, n=6, start=False)
    kernels.append(kernel)
    kernel.kill()
    kernel.wait(10)
    racers = []
    for n in range(3):
        code = RACER.format(
            tests=str(TESTS_DIR),
            ready=str(marks / f"ready-{n}"),
            go=str(marks / "go"),
            store=str(store_dir),
        )
        racers.append(subprocess.Popen([sys.executable, "-c", code]))
    kernels.extend(racers)
    wait_for(lambda: all((marks / f"ready-{n}").exists() for n in range(3)), 60, "racers ready")
    touch(marks / "go")  # all open the store at the same moment
    wait_for(lambda: len(list(marks.glob("started-*"))) >= 2, 60, "missions start")
    touch(marks / "gate")
    for racer in racers:
        assert racer.wait(120) == 0
    orch = orchestrators()
    all_ended(orch, store_dir, ids)
    rows = MissionStore(store_dir).rows_by_id(ids)
    assert {rows[i]["status"] for i in ids} == {"succeeded"}
    record_fault(
        "3 orchestrators racing for a dead kernel's queue of 6", ids, tally(store_dir, ids)
    )
