"""No worker event is dropped: while another connection holds the store's write lock
longer than a worker waits for it, the worker keeps its events (in order) and writes them
when the lock is released; the mission ends with every step's events stored once."""

from __future__ import annotations

import collections
import contextlib
import sqlite3

from support.executors import Gated, Touch, echo
from support.runtime import store_events, wait_for

from mission_widgets import Mission, MissionStep
from mission_widgets.runtime.store import WORKER_LOCK_TIMEOUT_ENV

STEPS = ("first", "second", "third", "last")


def test_events_written_while_the_store_is_locked_are_kept_and_written_later(
    orchestrators, store_dir, tmp_path, monkeypatch
):
    # Workers give up a write after 0.5 s (30 s by default): the lock below outlasts it.
    monkeypatch.setenv(WORKER_LOCK_TIMEOUT_ENV, "0.5")
    started, gate, finished = tmp_path / "started", tmp_path / "gate", tmp_path / "finished"
    orch = orchestrators(2)
    mission = Mission(
        "through a long lock",
        steps=[
            MissionStep("first", "waits for the gate", Gated(gate, started)),
            MissionStep("second", "s", echo, depends_on="first"),
            MissionStep("third", "s", echo, depends_on="second"),
            MissionStep("last", "s", Touch(finished), depends_on="third"),
        ],
    )
    orch.run_async(mission)
    wait_for(started.exists, 60, "the first step to start")
    log = orch.store.log_file(mission.id)

    holder = sqlite3.connect(orch.store.db_path, timeout=30, isolation_level=None)
    with contextlib.closing(holder):
        holder.execute("BEGIN IMMEDIATE")  # an external writer holds the store
        gate.touch()
        wait_for(finished.exists, 60, "every step to run while the store is locked")
        wait_for(lambda: "keeping them to write later" in log.read_text(), 60, "the kept note")
        holder.execute("ROLLBACK")

    assert orch.wait(mission.id, 90).status == "succeeded"
    events = [e for e in store_events(store_dir) if e["mission_id"] == mission.id]
    kinds = collections.Counter((e["event"], (e["payload"] or {}).get("step_id")) for e in events)
    for step in STEPS:  # every step's events, each exactly once
        for name in ("step_start", "step_success", "step_done"):
            assert kinds[(name, step)] == 1, (name, step, kinds)
    assert kinds[("mission_done", None)] == 1
    # In the order the worker emitted them.
    stamps = [e["timestamp"] for e in events if e["event"] != "heartbeat"]
    assert stamps == sorted(stamps)
    assert orch.store.row(mission.id)["n_done"] == len(STEPS)
    assert "the store took the kept events" in log.read_text()
