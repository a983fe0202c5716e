"""A backend found from a mission's store row answers, without an orchestrator: is it alive,
can this process stop it, stop it, why did it end (what the CLI and the panel ask)."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
from support.executors import Gated, touch
from support.runtime import TESTS_DIR, one_step, wait_for

from mission_widgets.runtime.backend import Backend, CannotStopHere
from mission_widgets.runtime.registry import backend_for_row
from mission_widgets.runtime.store import MissionStore
from mission_widgets.runtime.subprocess_backend import SubprocessBackend
from mission_widgets.runtime.thread_backend import ThreadBackend

# A kernel that runs one gated mission on the thread backend and waits to be killed.
THREAD_KERNEL = """
import sys, time
sys.path.insert(0, {tests!r})
from support.executors import Gated
from support.runtime import one_step
from mission_widgets import MissionOrchestrator
orch = MissionOrchestrator(1, backend="thread", store={store!r})
mission = one_step("in a thread", Gated({gate!r}, started={started!r}))
orch.run_async(mission)
print(mission.id, flush=True)
time.sleep(120)
"""


def test_a_subprocess_worker_is_judged_and_stopped_from_its_row_alone(tmp_path, store, launch):
    mission = one_step("gated", Gated(tmp_path / "gate", started=tmp_path / "started"))
    launch(mission)
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the worker runs the step")
    row = launch.row(mission.id)
    observer = backend_for_row(row, MissionStore(store.root))  # no orchestrator, no handle
    assert isinstance(observer, SubprocessBackend)
    assert observer.is_alive(row) is True
    assert observer.can_cancel_here(row) is True
    observer.stop(row, 2.0)
    assert not psutil.pid_exists(row["pid"]) or observer.is_alive(row) is False
    assert f"worker process {row['pid']} is gone" in observer.exit_reason(row)


def test_the_caller_s_own_backend_answers_for_its_rows(tmp_path, store, launch):
    mission = one_step("gated", Gated(tmp_path / "gate"))
    runner = launch(mission)
    row = launch.row(mission.id)
    assert backend_for_row(row, store, current=runner) is runner
    assert backend_for_row({**row, "backend": "thread"}, store, current=runner) is not runner
    touch(tmp_path / "gate")
    wait_for(lambda: runner.is_alive(row) is False, 30, "the worker exits")


@pytest.fixture
def thread_kernel(tmp_path, store_dir):
    """A child kernel running a gated mission on a thread: (process, mission id)."""
    code = THREAD_KERNEL.format(
        tests=str(TESTS_DIR),
        store=str(store_dir),
        gate=str(tmp_path / "gate"),
        started=str(tmp_path / "started"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        mission_id = proc.stdout.readline().strip()
        wait_for(lambda: (tmp_path / "started").exists(), 30, "the kernel's thread runs")
        yield proc, mission_id
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()


def test_a_thread_mission_of_another_live_kernel_cannot_be_stopped_here(store, thread_kernel):
    proc, mission_id = thread_kernel
    row = store.row(mission_id)
    observer = backend_for_row(row, store)
    assert isinstance(observer, ThreadBackend)
    assert observer.is_alive(row) is True
    assert observer.can_cancel_here(row) is False
    with pytest.raises(CannotStopHere, match=rf"process {proc.pid}.*orch.cancel"):
        observer.stop(row, 1.0)
    assert proc.poll() is None  # nobody killed the kernel


def test_a_thread_mission_of_a_dead_kernel_is_gone_and_says_so(store, thread_kernel):
    proc, mission_id = thread_kernel
    proc.kill()
    proc.wait(10)
    row = store.row(mission_id)
    observer = backend_for_row(row, store)
    assert observer.is_alive(row) is False
    assert observer.exit_reason(row) == (
        f"the kernel (pid {proc.pid}) that ran this mission in a thread has exited"
    )


def test_a_thread_mission_of_this_process_is_stopped_by_any_backend_here(tmp_path, launch):
    mission = one_step("gated", Gated(tmp_path / "gate", started=tmp_path / "started"))
    launch(mission, backend="thread")
    wait_for(lambda: (tmp_path / "started").exists(), 10, "the thread runs the step")
    row = launch.row(mission.id)
    assert row["pid"] == os.getpid()
    observer = backend_for_row(row, launch.store)  # not the backend that launched it
    assert observer.is_alive(row) is True and observer.can_cancel_here(row) is True
    touch(tmp_path / "gate")  # the attempt in progress ends; no new step starts
    observer.stop(row, 10.0)
    wait_for(lambda: observer.is_alive(row) is False, 10, "the thread ends")
    assert launch.row(mission.id)["finished_at"] is not None


def test_a_backend_not_known_here_cannot_tell_and_cannot_stop(store):
    row = {"id": "m1", "backend": "martian", "pid": os.getpid(), "pid_started": None}
    observer = backend_for_row(row, store)
    assert type(observer) is Backend
    assert observer.is_alive(row) is None
    assert observer.can_cancel_here(row) is False
    with pytest.raises(CannotStopHere, match="'martian' backend"):
        observer.stop(row, 1.0)
