"""Warm workers: missions are forked by a per-store fork server that has the worker imported,
and still behave as fresh worker processes -- the kernel's environment, directory and import
path at launch, their own process group (cancel kills it), their own random numbers; a
server that dies gives way to fresh interpreters with one warning; none outlives close()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings

import psutil
import pytest
from support.executors import Gated, Report, SpawnChildAndWait
from support.runtime import group_alive, one_step
from support.waiting import wait_for, worker_processes

from mission_widgets import MissionOrchestrator


def warm_orchestrator(orchestrators, **options):
    """An orchestrator whose fork server is up (a first mission starts it)."""
    orch = orchestrators(2, warm=True, **options)
    orch.backend.check(one_step("starts the server", Report(os.devnull)))
    wait_for(lambda: orch.backend.warm_ready, 60, "the warm fork server to be ready")
    return orch


def reported(orch, executor, path):
    handle = orch.run_async(one_step("report", executor))
    assert handle.wait(timeout=60).status == "succeeded", orch.log_tail(handle.mission.id)
    return json.loads(path.read_text()), handle


def test_env_cwd_and_sys_path_set_after_the_server_started_reach_the_next_mission(
    orchestrators, tmp_path, monkeypatch
):
    orch = warm_orchestrator(orchestrators)
    server = orch.backend.warm_server_pid
    # Set in "a cell" after the server started: an env key, a directory, an import path
    # holding a module written just now.
    monkeypatch.setenv("MW_KEY_SET_LATER", "set after the server started")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    late = tmp_path / "late_path"
    late.mkdir()
    (late / "written_later.py").write_text("VALUE = 'imported from a late path'\n")
    monkeypatch.syspath_prepend(str(late))
    out = tmp_path / "seen.json"
    seen, handle = reported(orch, Report(out, "MW_KEY_SET_LATER", "written_later"), out)
    assert seen["ppid"] == server  # forked by the warm server, not a fresh interpreter
    assert seen["env"] == "set after the server started"
    assert seen["cwd"] == str(workdir)
    assert seen["module"] == "imported from a late path"
    assert str(late) in seen["sys_path"]
    assert seen["pgid"] == seen["pid"] == handle.pid  # its own process group
    fresh = subprocess.run(
        [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGPIPE))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert seen["sigpipe"] == fresh.stdout.strip()  # a closed pipe raises, as in a fresh one
    monkeypatch.delenv("MW_KEY_SET_LATER")
    seen, _ = reported(orch, Report(out, "MW_KEY_SET_LATER"), out)
    assert seen["env"] is None  # removed in the kernel: gone for the next mission too


def test_two_missions_draw_different_random_numbers(orchestrators, tmp_path):
    orch = warm_orchestrator(orchestrators, preload=["random", "numpy.random"])
    draws = []
    for k in range(2):
        out = tmp_path / f"draw{k}.json"
        seen, _ = reported(orch, Report(out, numpy_too=True), out)
        assert seen["ppid"] == orch.backend.warm_server_pid
        draws.append((seen["random"], seen["numpy"]))
    assert draws[0][0] != draws[1][0]
    assert draws[0][1] != draws[1][1]


def test_a_killed_fork_server_gives_way_to_fresh_interpreters_with_one_warning(
    orchestrators, tmp_path
):
    orch = warm_orchestrator(orchestrators)
    server = psutil.Process(orch.backend.warm_server_pid)
    server.kill()
    wait_for(lambda: not orch.backend.warm_ready, 30, "the kernel to see the server die")
    with pytest.warns(RuntimeWarning, match="fork server") as caught:
        for k in range(2):
            out = tmp_path / f"fresh{k}.json"
            seen, _ = reported(orch, Report(out), out)
            assert seen["ppid"] == os.getpid()  # a fresh interpreter, started by the kernel
    assert len([w for w in caught if "fork server" in str(w.message)]) == 1
    assert orch.backend.warm_server_pid is None


def test_a_server_that_cannot_start_gives_way_with_one_warning(orchestrators, tmp_path):
    broken = tmp_path / "broken_path"
    broken.mkdir()
    (broken / "explodes_on_import.py").write_text("raise RuntimeError('no')\n")
    sys.path.insert(0, str(broken))
    try:
        orch = orchestrators(2, warm=True, preload=["explodes_on_import"])
        orch.backend.check(one_step("starts the server", Report(os.devnull)))
        wait_for(lambda: orch.backend.warm_server_pid is None, 60, "the server to give up")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for k in range(2):
                out = tmp_path / f"fresh{k}.json"
                seen, _ = reported(orch, Report(out), out)
                assert seen["ppid"] == os.getpid()
        messages = [str(w.message) for w in caught if "fork server" in str(w.message)]
        assert len(messages) == 1 and "could not start" in messages[0], messages
    finally:
        sys.path.remove(str(broken))


def test_cancel_kills_the_process_group_of_a_warm_mission(orchestrators, tmp_path):
    orch = warm_orchestrator(orchestrators)
    pid_file = tmp_path / "child.pid"
    handle = orch.run_async(one_step("spawner", SpawnChildAndWait(pid_file)))
    wait_for(pid_file.exists, 60, "the step's child process")
    assert psutil.Process(handle.pid).ppid() == orch.backend.warm_server_pid
    child = int(pid_file.read_text())
    assert os.getpgid(child) == handle.pid  # the child is in the mission's group
    orch.cancel(handle.mission.id)
    assert handle.wait(timeout=60).status == "cancelled"
    wait_for(lambda: not group_alive(handle.pid), 30, "the mission's process group to die")
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"


def test_nothing_outlives_close_and_an_idle_server_exits_by_itself(orchestrators, tmp_path):
    orch = warm_orchestrator(orchestrators)
    gate = tmp_path / "gate"
    handle = orch.run_async(one_step("gated", Gated(gate, tmp_path / "started")))
    wait_for((tmp_path / "started").exists, 60, "the step to start")
    server = psutil.Process(orch.backend.warm_server_pid)
    assert handle.pid in [p.pid for p in server.children()]
    # Its command line names its store and mission, as a fresh worker's does.
    assert [p.pid for p in worker_processes(handle.mission.id)] == [handle.pid]
    gate.touch()
    assert handle.wait(timeout=60).status == "succeeded"
    orch.close()
    wait_for(lambda: not _running(server), 30, "the fork server to exit on close()")
    assert worker_processes(orch.store.root) == []

    idle = orchestrators(2, warm=True, warm_idle_secs=0.5, store=tmp_path / "idle")
    idle.backend.check(one_step("starts the server", Report(os.devnull)))
    wait_for(lambda: idle.backend.warm_ready, 60, "the second server to be ready")
    second = psutil.Process(idle.backend.warm_server_pid)
    wait_for(lambda: not _running(second), 30, "the idle server to exit by itself")
    # The next mission starts a new server (and runs meanwhile in a fresh interpreter).
    out = tmp_path / "after_idle.json"
    seen, _ = reported(idle, Report(out), out)
    assert seen["ppid"] in (os.getpid(), idle.backend.warm_server_pid)


def test_a_mission_launched_while_the_idle_server_offers_to_exit_is_served(orchestrators, tmp_path):
    """The idle exit is a handshake: the server offers it and serves on until the kernel
    closes its pipe; a launch sent before that runs there, the next one starts anew."""
    orch = orchestrators(2, warm=True, warm_idle_secs=0.2)
    offered, answered = threading.Event(), threading.Event()

    def hold_the_offer(message):  # the kernel reads the offer only when the test says so
        if "idle" in message:
            offered.set()
            answered.wait(60)

    orch.backend._starter.message_hook = hold_the_offer
    orch.backend.check(one_step("starts the server", Report(os.devnull)))
    wait_for(lambda: orch.backend.warm_ready, 60, "the warm fork server to be ready")
    server = psutil.Process(orch.backend.warm_server_pid)
    assert offered.wait(60), "the idle server did not offer to exit"
    out = tmp_path / "during.json"
    launched = {}
    thread = threading.Thread(
        target=lambda: launched.update(handle=orch.run_async(one_step("report", Report(out))))
    )
    thread.start()
    wait_for(out.exists, 60, "the mission launched during the offer to run")
    answered.set()
    thread.join(60)
    handle = launched["handle"]
    assert handle.wait(timeout=60).status == "succeeded", orch.log_tail(handle.mission.id)
    assert json.loads(out.read_text())["ppid"] == server.pid  # served by the idle server
    wait_for(lambda: not _running(server), 30, "the idle server to exit once answered")
    after = tmp_path / "after.json"
    seen, _ = reported(orch, Report(after), after)  # no warning: a new server, or fresh
    assert seen["ppid"] != server.pid


@pytest.mark.parametrize("answer", ["read first", "read after the end"])
def test_the_kernel_hears_of_a_mission_end_before_its_worker_exits(orchestrators, tmp_path, answer):
    """A warm worker says that its end is stored (on a pipe its server handed it); the
    orchestrator wakes for that, once, not for the exit that follows -- also when the
    end is told before the kernel has read the server's answer with the worker's pid."""
    orch = warm_orchestrator(orchestrators)
    starter = orch.backend._starter
    read = []  # the server's messages, as the kernel reads them
    told_early, woken_once = threading.Event(), threading.Event()

    def hold(message):
        if "started" in message and answer == "read after the end":
            server = starter._server
            wait_for(lambda: server.stored_early, 60, "the end to be told first")
            told_early.set()
        if "exit" in message:  # read only once the end woke the orchestrator (or 60 s)
            woken_once.wait(60)
        read.append(message)

    starter.message_hook = hold
    exits = {}
    handled = starter._on_end

    def on_end(process):  # the kernel's handling of an exit, done
        handled(process)
        exits.setdefault(process.pid, threading.Event()).set()

    starter._on_end = on_end
    woken = []
    wake = orch.backend.on_exit

    def on_exit(mission_id):
        woken.append((mission_id, list(read)))
        woken_once.set()
        wake(mission_id)

    orch.backend.on_exit = on_exit
    handle = orch.run_async(one_step("noop", Report(os.devnull)))
    assert handle.wait(timeout=60).status == "succeeded"
    assert told_early.is_set() == (answer == "read after the end")
    wait_for(lambda: handle.pid in exits, 60, "the kernel to handle the worker's exit")
    mine = [seen for mission_id, seen in woken if mission_id == handle.mission.id]
    assert len(mine) == 1, woken
    assert any("started" in m and m["pid"] == handle.pid for m in mine[0])
    assert not any(m.get("exit") == handle.pid for m in mine[0])  # woken before the exit


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"preload": ["no_such_module_anywhere"]}, ValueError, "no_such_module_anywhere"),
        ({"preload": "numpy"}, TypeError, "preload"),
        ({"warm": "yes"}, TypeError, "warm"),
        ({"warm_idle_secs": 0}, ValueError, "warm_idle_secs"),
    ],
)
def test_bad_warm_options_are_refused_at_construction_by_name(tmp_path, options, error, names):
    with pytest.raises(error, match=names):
        MissionOrchestrator(store=tmp_path / "store", **options)
