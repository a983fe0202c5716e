"""run_async() handles, poll_async() mirrors, status(), the store's files, step timeouts."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from support.executors import Chatty, Fail, Gated, ProgressThenGate, Sleeper, echo
from support.runtime import (
    event_names,
    is_alive,
    one_step,
    store_events,
    wait_for,
    worker_processes,
)

from mission_widgets import Mission, MissionStep
from mission_widgets.core.mission import MISSION_STATUSES


def two_steps(goal: str, first, second=echo) -> Mission:
    return Mission(
        goal,
        steps=[
            MissionStep("first", f"first of {goal}", first),
            MissionStep("second", f"second of {goal}", second, depends_on=["first"]),
        ],
        backoff_factor=0,
    )


def test_run_async_returns_a_handle_at_once(orchestrators, store_dir, tmp_path):
    orch = orchestrators()
    gate = tmp_path / "gate"
    mission = two_steps("async", Gated(gate, result="first result"))

    handle = orch.run_async(mission)

    # It returned while the mission cannot have finished (it waits for the gate).
    assert handle.mission_id == mission.id
    worker = psutil.Process(handle.pid)
    assert "mission_widgets.worker" in " ".join(worker.cmdline())
    assert mission.id in worker.cmdline()
    assert handle.pid != os.getpid()
    assert handle.checkpoint_path == str(store_dir.resolve() / "checkpoints" / f"{mission.id}.json")
    assert orch.async_handles[mission.id] is handle
    assert mission in orch.running and not handle.done()

    began = time.monotonic()
    with pytest.raises(TimeoutError, match=mission.id):
        handle.wait(timeout=0.5)
    assert 0.5 <= time.monotonic() - began < 5
    assert not mission.is_finished and is_alive(worker)

    gate.touch()
    finished = handle.wait(timeout=30)

    assert finished is mission
    assert mission.status == "succeeded" and handle.done()
    assert [s.status for s in mission.steps] == ["done", "done"]
    assert mission.steps[0].result == "first result"
    assert mission.steps[1].result == "did: second of async"
    assert mission in orch.completed and mission not in orch.running
    saved = json.loads(Path(handle.checkpoint_path).read_text())
    assert saved["status"] == "succeeded"
    assert [s["result"] for s in saved["steps"]] == ["first result", "did: second of async"]
    wait_for(lambda: not is_alive(worker), 10, what="the worker to exit")


def test_poll_async_mirrors_a_running_mission(orchestrators, store_dir, tmp_path):
    orch = orchestrators(3)
    gate, started = tmp_path / "gate", tmp_path / "started"
    slow = two_steps("slow", ProgressThenGate(gate, started, result="slow result"))
    quick = two_steps("quick", echo)
    orch.run_async(slow)
    orch.run_async(quick)
    newly_completed = []

    def poll():
        result = orch.poll_async()
        newly_completed.extend(result.completed)
        return result

    wait_for(
        lambda: poll() and quick in newly_completed and slow.steps[0].progress == 0.5,
        what="quick to finish and slow to report half progress",
    )
    result = poll()
    assert result.still_running == 1 and result.completed == []
    assert newly_completed == [quick]
    assert quick.status == "succeeded"
    assert [s.result for s in quick.steps] == ["did: first of quick", "did: second of quick"]

    assert slow.status == "running" and slow in orch.running
    assert [s.status for s in slow.steps] == ["running", "pending"]
    assert slow.progress == pytest.approx(0.25)  # half of one step of two
    progress = [e for e in slow.audit_log if e["event"] == "progress"]
    assert [(e["progress"], e["message"], e["step_id"]) for e in progress] == [
        (0.5, "half way", "first")
    ]

    gate.touch()
    wait_for(lambda: poll() and slow in newly_completed, what="slow to finish")
    assert newly_completed == [quick, slow]
    assert slow.status == "succeeded" and slow.progress == 1.0
    assert [s.status for s in slow.steps] == ["done", "done"]
    assert [s.result for s in slow.steps] == ["slow result", "did: second of slow"]
    # The mirror's audit log is the store's event stream of that mission, in order.
    names = [e["event"] for e in slow.audit_log]
    assert names == event_names(store_dir, slow.id)
    assert names[0] == "mission_start" and names[-1] == "mission_done"
    for name in ("mission_planned", "step_start", "progress", "step_success", "step_done"):
        assert name in names
    assert all(e["mission_id"] == slow.id for e in slow.audit_log)
    last = poll()
    assert last.completed == [] and last.still_running == 0


def test_timeout_stops_the_attempt_in_a_worker(orchestrators):
    orch = orchestrators()
    mission = one_step("too slow", Sleeper(30), timeout_secs=0.5, max_retries=0)
    began = time.monotonic()
    handle = orch.run_async(mission)
    worker = psutil.Process(handle.pid)

    handle.wait(timeout=10)

    assert time.monotonic() - began < 8  # the 30 s sleep was cut short
    step = mission.steps[0]
    assert step.status == "skipped"  # on_step_timeout="skip_or_replan": left out, not done
    assert [e["error_type"] for e in step.error_history] == ["timeout"]
    failures = [e for e in mission.audit_log if e["event"] == "step_failure"]
    assert [(e["error_type"], e["attempt"]) for e in failures] == [("timeout", 1)]
    assert "timed out after 0.5 s" in failures[0]["error_message"]
    assert failures[0]["duration_ms"] < 5000
    wait_for(lambda: not is_alive(worker), 10, what="the worker to exit")


REQUIRED_COLUMNS = [
    "id",
    "goal",
    "status",
    "n_steps",
    "n_done",
    "progress",
    "started_at",
    "finished_at",
    "elapsed_s",
    "backend",
    "pid",
    "last_heartbeat",
    "error",
]


def check_status_dtypes(frame: pd.DataFrame) -> None:
    missing = set(REQUIRED_COLUMNS) - set(frame.columns)
    assert not missing, f"status() lacks columns {sorted(missing)}"
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert set(MISSION_STATUSES) <= set(frame["status"].cat.categories)
    for name in ("started_at", "finished_at", "last_heartbeat"):
        assert pd.api.types.is_datetime64_any_dtype(frame[name]), name
        assert str(frame[name].dt.tz) == "UTC", name
    for name in ("n_steps", "n_done"):
        assert pd.api.types.is_integer_dtype(frame[name]), name
    assert pd.api.types.is_integer_dtype(frame["pid"])
    for name in ("progress", "elapsed_s"):
        assert pd.api.types.is_float_dtype(frame[name]), name
    for name in ("id", "goal", "backend"):
        assert pd.api.types.is_string_dtype(frame[name]) or frame[name].dtype == object, name


def test_status_dataframe(orchestrators, store_dir):
    orch = orchestrators(2)
    empty = orch.status()
    assert isinstance(empty, pd.DataFrame) and len(empty) == 0
    check_status_dtypes(empty)

    before = pd.Timestamp.now(tz="UTC")
    good = two_steps("good", echo)
    bad = Mission(
        "bad",
        steps=[MissionStep("boom", "explode", Fail("kaboom"), max_retries=0)],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    )
    handles = {m.id: orch.run_async(m) for m in (good, bad)}
    for handle in handles.values():
        handle.wait(timeout=30)
    queued = one_step("queued", echo)
    orch.submit(queued)
    wait_for(lambda: not worker_processes(store_dir), what="the workers to exit")
    after = pd.Timestamp.now(tz="UTC")

    frame = orch.status()
    check_status_dtypes(frame)
    assert len(frame) == 3 and frame["id"].is_unique
    rows = frame.set_index("id")

    row = rows.loc[good.id]
    assert (row["goal"], row["status"], row["n_steps"], row["n_done"]) == (
        "good",
        "succeeded",
        2,
        2,
    )
    assert row["progress"] == 1.0 and row["backend"] == "subprocess"
    assert row["pid"] == handles[good.id].pid
    assert before <= row["started_at"] <= row["finished_at"] <= after
    assert before <= row["last_heartbeat"] <= after
    elapsed = (row["finished_at"] - row["started_at"]).total_seconds()
    assert row["elapsed_s"] == pytest.approx(elapsed, abs=1e-3)
    assert pd.isna(row["error"])

    row = rows.loc[bad.id]
    assert (row["status"], row["n_steps"], row["n_done"]) == ("failed", 1, 0)
    assert "kaboom" in row["error"]
    assert row["elapsed_s"] >= 0

    row = rows.loc[queued.id]
    assert (row["status"], row["n_steps"], row["n_done"], row["progress"]) == ("pending", 1, 0, 0)
    assert pd.isna(row["started_at"]) and pd.isna(row["finished_at"])
    assert pd.isna(row["elapsed_s"]) and pd.isna(row["pid"])


def modes(store_dir) -> tuple[dict[str, int], dict[str, int]]:
    """Permission bits of every folder and every file of a store, by path."""
    folders, files = {}, {}
    for folder, _, names in os.walk(store_dir):
        folders[folder] = stat.S_IMODE(os.stat(folder).st_mode)
        for name in names:
            path = os.path.join(folder, name)
            files[path] = stat.S_IMODE(os.stat(path).st_mode)
    return folders, files


def test_store_files_are_private_and_the_log_captures_output(orchestrators, store_dir):
    orch = orchestrators()
    mission = one_step("chatty", Chatty())
    orch.submit(mission)
    assert orch.run_all()[0].status == "succeeded"

    store = orch.store
    assert store.root == store_dir.resolve()
    assert store.db_path.is_file()
    assert store.log_file(mission.id).is_file()
    assert store.mission_file(mission.id).is_file()
    folders, files = modes(store_dir)
    assert len(folders) == 4  # the store, missions/, logs/, checkpoints/
    assert all(mode == 0o700 for mode in folders.values()), folders
    checkpoints = str(store.checkpoints_dir)
    others = {path: mode for path, mode in files.items() if not path.startswith(checkpoints)}
    assert {str(store.db_path), str(store.log_file(mission.id))} <= set(others)
    assert str(store.mission_file(mission.id)) in others
    assert all(mode == 0o600 for mode in others.values()), others

    log = store.log_file(mission.id).read_text()
    assert "hello from stdout" in log
    assert "hello from stderr" in log
    tail = orch.log_tail(mission.id)
    assert "hello from stdout" in tail and "hello from stderr" in tail
    assert [e["event"] for e in store_events(store_dir)][-1] == "mission_done"


def test_checkpoint_files_are_private(orchestrators, store_dir):
    orch = orchestrators()
    mission = one_step("checkpointed", echo)
    orch.submit(mission)
    assert orch.run_all()[0].status == "succeeded"
    path = orch.store.checkpoint_file(mission.id)
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
