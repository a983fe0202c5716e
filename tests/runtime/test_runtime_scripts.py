"""Missions from a plain ``python script.py``: ``wait_all()`` waits for everything in flight,
``run_all()`` after ``start_queued()`` waits for what that started, Ctrl-C in a blocking call
prints a summary (what was cancelled, what still runs) instead of a traceback into
``threading.py``, and a script that exits while missions still run says so, once.

The script tests run real scripts in real interpreters (``sys.executable``) on a store under
``tmp_path``; their missions are gated on files, so nothing depends on timing."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from support.executors import Gated, touch
from support.runtime import one_step, wait_for
from support.stores import child_env

from mission_widgets import MissionOrchestrator
from mission_widgets.orchestrator.blocking import MissionsInterrupted
from mission_widgets.runtime.store import MissionStore

EXIT_NOTICE = "3 missions still run in worker processes; `mission-widgets status` shows them"


def gated(goal, gate, started):
    return one_step(goal, Gated(gate, started=started))


def test_wait_all_starts_the_queue_and_waits_for_everything(orchestrators, tmp_path):
    orch = orchestrators(max_concurrent=2)
    gate = tmp_path / "gate"
    first = orch.run_async(gated("started at once", gate, tmp_path / "a")).mission
    queued = [gated(f"queued {i}", gate, tmp_path / f"q{i}") for i in range(2)]
    for mission in queued:
        orch.submit(mission)
    with pytest.raises(TimeoutError, match=r"wait_all\(\): 3 missions still in flight"):
        orch.wait_all(timeout=0.5)  # every mission waits on the gate: none can have ended
    assert queued[0] in orch.running  # wait_all started the queue within the window
    touch(gate)
    ended = orch.wait_all(timeout=60)
    assert ended == [first, *queued]  # submission order
    assert [m.status for m in ended] == ["succeeded"] * 3
    assert not orch.running and not orch.pending_queue


def test_run_all_after_start_queued_waits_for_what_start_queued_started(orchestrators, tmp_path):
    orch = orchestrators(max_concurrent=2)
    gate = tmp_path / "gate"
    missions = [gated(f"m{i}", gate, tmp_path / f"s{i}") for i in range(3)]
    for mission in missions:
        orch.submit(mission)
    assert len(orch.start_queued()) == 2
    result: list = []
    blocked = threading.Thread(target=lambda: result.append(orch.run_all()), daemon=True)
    blocked.start()
    wait_for(lambda: (tmp_path / "s0").exists() and (tmp_path / "s1").exists(), 60, "2 started")
    assert blocked.is_alive() and not result  # it did not return [] at once
    touch(gate)
    blocked.join(60)
    assert result == [missions]
    assert [m.status for m in missions] == ["succeeded"] * 3


def test_run_all_does_not_wait_for_missions_of_run_async(orchestrators, tmp_path):
    orch = orchestrators(max_concurrent=2)
    elsewhere = orch.run_async(gated("run_async", tmp_path / "never", tmp_path / "x"))
    done = one_step("queued", lambda task, session, context: "done")
    orch.submit(done)
    assert orch.run_all() == [done]
    assert elsewhere.mission in orch.running
    orch.cancel(elsewhere.mission_id)


SCRIPT = """
import signal, sys
from pathlib import Path

signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite under nohup ignores it

from mission_widgets import MissionOrchestrator
from support.executors import Gated
from support.runtime import one_step

store, gate, marks, call = sys.argv[1:5]
orch = MissionOrchestrator(max_concurrent=3, store=store)
side = orch.run_async(one_step("started with run_async", Gated(gate, started=f"{marks}/side")))
for i in range(0 if call == "wait" else 3):
    orch.submit(one_step(f"queued {i}", Gated(gate, started=f"{marks}/q{i}")))
if call == "exit":
    orch.start_queued()
    orch.cancel(orch.pending_queue[0].id)
    print("started", flush=True)
    sys.exit(0)
if call == "wait_all":
    orch.wait_all()
elif call == "wait":
    orch.wait(side.mission_id)
else:
    orch.run_all()
"""


def run_script(tmp_path, call, *, env_store=None):
    """The script above on ``tmp_path/store``; returns (process, store, gate, marks)."""
    store, gate, marks = tmp_path / "store", tmp_path / "gate", tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = child_env()
    env["MISSION_WIDGETS_STORE"] = str(env_store or tmp_path / "elsewhere")
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(gate), str(marks), call],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, store, gate, marks


def finish_all(store, gate):
    """Open the gate, let a new orchestrator on ``store`` take over what the script left
    (running missions, and queued ones of a process that is gone) and wait for all of it;
    returns the rows by goal."""
    touch(gate)
    orch = MissionOrchestrator(store=store)
    try:
        orch.wait_all(timeout=60)
    finally:
        orch.close()
    opened = MissionStore(store, create=False)
    try:
        assert not opened.rows(("id",), "WHERE finished_at IS NULL")
        return {r["goal"]: r for r in opened.rows(("goal", "status", "error"))}
    finally:
        opened.close()


@pytest.mark.slow
def test_a_script_that_exits_while_missions_run_says_so_once(tmp_path, no_worker_left):
    store = tmp_path / "store"
    proc, store, gate, _marks = run_script(tmp_path, "exit", env_store=store)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.count(EXIT_NOTICE) == 1, err
    assert err.strip() == EXIT_NOTICE  # nothing else: no --store hint for the default store
    rows = finish_all(store, gate)  # the missions outlived the script, and still end well
    assert rows["started with run_async"]["status"] == "succeeded"
    assert [rows[f"queued {i}"]["status"] for i in range(3)] == ["succeeded"] * 2 + ["cancelled"]


@pytest.mark.slow
def test_the_exit_notice_names_a_store_the_command_line_would_not_find(tmp_path, no_worker_left):
    proc, store, gate, _ = run_script(tmp_path, "exit")
    _, err = proc.communicate(timeout=60)
    assert f"{EXIT_NOTICE} (add `--store {store.resolve()}`)" in err, err
    finish_all(store, gate)


@pytest.mark.slow
def test_a_script_whose_missions_ended_exits_silently(tmp_path, no_worker_left):
    proc, _store, gate, _ = run_script(tmp_path, "wait_all")
    wait_for(lambda: len(list((tmp_path / "marks").iterdir())) >= 3, 60, "3 missions started")
    touch(gate)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == "", err


def interrupt(proc, marks, n_started):
    wait_for(lambda: len(list(marks.iterdir())) >= n_started, 60, f"{n_started} started")
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_run_all_cancels_what_it_ran_and_says_what_still_runs(tmp_path, no_worker_left):
    proc, store, gate, marks = run_script(tmp_path, "run_all")
    _, err = interrupt(proc, marks, 3)  # run_async's mission and two of the queue
    assert proc.returncode != 0
    assert "threading.py" not in err, err
    assert "MissionsInterrupted: run_all() interrupted; cancelled 3 missions" in err, err
    assert "1 mission still runs (not cancelled)" in err and "started with run_async" in err
    assert err.count("1 mission still runs in a worker process") == 1, err  # and at exit
    rows = finish_all(store, gate)
    assert rows["started with run_async"]["status"] == "succeeded"
    for i in range(3):  # two were running, one was still queued
        assert rows[f"queued {i}"]["status"] == "cancelled"
        assert "run_all() was interrupted" in rows[f"queued {i}"]["error"], rows


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("call", ["wait", "wait_all"])
def test_ctrl_c_while_waiting_cancels_nothing_and_says_what_still_runs(
    tmp_path, call, no_worker_left
):
    proc, store, gate, marks = run_script(tmp_path, call)
    running = 3 if call == "wait_all" else 1  # wait_all started two of the queue
    _, err = interrupt(proc, marks, running)
    assert "threading.py" not in err, err
    summary = next(line for line in err.splitlines() if "MissionsInterrupted" in line)
    assert f"{call}() interrupted" in summary and not re.search(r"cancelled \d", summary)
    verb = "still runs" if running == 1 else "still run"
    assert f"{running} mission{'s' if running > 1 else ''} {verb} (not cancelled)" in summary
    assert "orch.cancel(id)" in summary
    if call == "wait_all":
        assert "1 mission stays queued" in summary, summary
    rows = finish_all(store, gate)  # what was queued and running ends well afterwards
    assert {r["status"] for r in rows.values()} == {"succeeded"}, rows


def test_an_interrupted_summary_is_a_keyboard_interrupt(tmp_path):
    summary = MissionsInterrupted("run_all() interrupted; nothing was running.", [], [])
    assert isinstance(summary, KeyboardInterrupt)
    assert str(summary) == "run_all() interrupted; nothing was running."
