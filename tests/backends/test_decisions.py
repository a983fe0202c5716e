"""Decisions by a person, worker side: a mission that asks waits in its worker or
thread, keeps its heartbeat, and takes the answer another process puts in the store."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.executors import Fail, echo
from support.faults import FailOnceThenShowContext
from support.runtime import store_events, wait_for

from mission_widgets import Mission, MissionStep, StallPolicy
from mission_widgets.runtime.store import MissionStore

BACKENDS = ["subprocess", "thread"]


def asking(executor, **policy) -> Mission:
    """Step ``fragile`` (no retries) asks a person when it fails; ``after`` depends on it."""
    return Mission(
        "asks a person",
        steps=[
            MissionStep("fragile", "may fail", executor, max_retries=0),
            MissionStep("after", "runs after it", echo, depends_on=["fragile"]),
        ],
        stall_policy=StallPolicy(on_max_retries="ask", **policy),
        backoff_factor=0,
    )


def events_of(store_dir, mission_id: str, name: str) -> list[dict]:
    return [
        e["payload"]
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"] == name
    ]


def waiting(store_dir, mission_id: str, count: int = 1) -> dict:
    return wait_for(
        lambda: (events_of(store_dir, mission_id, "mission_waiting")[count - 1 :] or [None])[0],
        30,
        f"mission {mission_id} waits for a decision",
    )


def answer_from_another_process(store_dir, mission_id: str, kind: str, payload: dict) -> None:
    code = (
        "import sys; from mission_widgets.runtime.store import MissionStore\n"
        "MissionStore(sys.argv[1]).add_request(sys.argv[2], sys.argv[3], eval(sys.argv[4]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(store_dir), mission_id, kind, repr(payload)],
        check=True,
        timeout=60,
    )


def ended(launch, mission_id: str) -> dict:
    return wait_for(
        lambda: (row := launch.row(mission_id))["finished_at"] is not None and row,
        30,
        f"mission {mission_id} ends",
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_skip_from_another_process_lets_the_next_steps_run(store_dir, launch, backend):
    mission = asking(Fail("broken"))
    launch(mission, backend=backend)
    asked = waiting(store_dir, mission.id)
    assert asked["waiting_on"] == "fragile"
    assert launch.row(mission.id)["finished_at"] is None
    answer_from_another_process(store_dir, mission.id, "decision", {"action": "skip"})
    row = ended(launch, mission.id)
    assert row["status"] == "succeeded"
    (skip,) = events_of(store_dir, mission.id, "escalation_skip")
    assert skip["decided_by"] == "person"
    assert MissionStore(store_dir).take_requests([mission.id]) == []  # taken exactly once


@pytest.mark.parametrize("backend", BACKENDS)
def test_abort_fails_the_mission(store_dir, launch, backend):
    mission = asking(Fail("broken"))
    launch(mission, backend=backend)
    waiting(store_dir, mission.id)
    answer_from_another_process(store_dir, mission.id, "decision", {"action": "abort"})
    row = ended(launch, mission.id)
    assert row["status"] == "failed"
    assert len(events_of(store_dir, mission.id, "escalation_abort")) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_explanation_reaches_the_retry_as_context(tmp_path, store_dir, launch, backend):
    shown = tmp_path / "context.txt"
    mission = asking(FailOnceThenShowContext(shown))
    launch(mission, backend=backend)
    waiting(store_dir, mission.id)
    answer_from_another_process(
        store_dir, mission.id, "explanation", {"text": "the mirror is down; use the backup"}
    )
    answer_from_another_process(store_dir, mission.id, "decision", {"action": "retry"})
    row = ended(launch, mission.id)
    assert row["status"] == "succeeded"
    assert "[AGENT ANALYSIS] the mirror is down; use the backup" in shown.read_text()


def test_the_worker_keeps_its_heartbeat_while_it_waits(store_dir, launch):
    mission = asking(Fail("broken"))
    launch(mission)  # heartbeat every 0.5 s
    asked = waiting(store_dir, mission.id)
    wait_for(
        lambda: (launch.row(mission.id)["last_heartbeat"] or 0) > asked["timestamp"] + 1.0,
        30,
        "a heartbeat more than 1 s after the question",
    )
    assert launch.row(mission.id)["finished_at"] is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancel_while_waiting_stops_the_mission(store_dir, launch, backend):
    mission = asking(Fail("broken"))
    runner = launch(mission, backend=backend)
    waiting(store_dir, mission.id)
    row = launch.row(mission.id)
    assert runner.can_cancel_here(row)
    runner.stop(row, 5.0)
    wait_for(lambda: runner.is_alive(row) is False, 30, "what ran it is gone")
    if backend == "thread":  # asked to stop: it ends cancelled by itself
        assert ended(launch, mission.id)["status"] == "cancelled"


def test_no_decision_in_time_applies_the_fallback(store_dir, launch):
    mission = asking(Fail("broken"), decision_timeout_secs=0.5)
    launch(mission)
    row = ended(launch, mission.id)
    assert row["status"] == "failed"
    (abort,) = events_of(store_dir, mission.id, "escalation_abort")
    assert abort["decided_by"] == "timeout"
