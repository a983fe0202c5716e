"""A decision answers one question: two processes racing ``decide()`` for the same waiting
mission get exactly one winner (the other is told who decided what), and an answer that
comes too late never answers the mission's next question."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from support.executors import Fail, FailThenGate, touch
from support.runtime import TESTS_DIR, asking, store_events, wait_for

from mission_widgets.core.errors import DecisionConflictError
from mission_widgets.runtime.decisions import DecisionSource

ROUNDS = 20
BATCH = 5

#: A process that answers every mission of ``ids`` with ``action`` the moment its gate
#: opens: two of them race for each mission.
RACER = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import MissionOrchestrator
    from mission_widgets.core.errors import DecisionConflictError
    from support.executors import touch, wait_for_path

    store, gates, name, action = sys.argv[2:6]
    ids = json.loads(open(os.path.join(gates, "ids.json")).read())
    orch = MissionOrchestrator(2, store=store)
    for mission_id in ids:
        touch(os.path.join(gates, f"ready-{mission_id}-{name}"))
        wait_for_path(os.path.join(gates, f"go-{mission_id}"), 120)
        try:
            orch.decide(mission_id, action)
            outcome = {"won": True, "pid": os.getpid()}
        except DecisionConflictError as exc:
            outcome = {"won": False, "pid": os.getpid(), "error": str(exc)}
        touch(os.path.join(gates, f"out-{mission_id}-{name}"), json.dumps(outcome))
    orch.close()
    """
)


def open_question(store_dir, mission_id):
    """The question id of the mission's last mission_waiting event if nothing answered it."""
    question = None
    for event in store_events(store_dir):
        if event["mission_id"] != mission_id:
            continue
        if event["event"] == "mission_waiting":
            question = event["payload"]["question"]
        elif event["event"].startswith("escalation_") or event["event"] == "mission_done":
            question = None
    return question


def escalations(store_dir, mission_id):
    return [
        (e["event"], e["payload"].get("question"))
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"].startswith("escalation_")
    ]


def waiting_questions(store_dir, mission_id):
    return [
        e["payload"]["question"]
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"] == "mission_waiting"
    ]


def decision_requests(store_dir, mission_id) -> int:
    with contextlib.closing(sqlite3.connect(store_dir / "store.sqlite", timeout=30)) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM requests WHERE mission_id=? AND kind='decision'", (mission_id,)
        ).fetchone()
    return count


ACTIONS = {"a": "retry", "b": "skip"}


def race(orch, store_dir, gates, mission_id, answered) -> str:
    """Open the racers' gate for a waiting mission; check the race had one winner whose
    answer alone was applied; return the winner's action. The mission's retry asks its next
    question only once ``answered`` exists (after both racers answered): a racer slowed down
    by a busy machine must still meet the first question, not a later one."""
    wait_for(lambda: open_question(store_dir, mission_id), 60, "the mission to ask")
    first = open_question(store_dir, mission_id)
    for name in ACTIONS:
        wait_for((gates / f"ready-{mission_id}-{name}").exists, 60, f"racer {name}")
    touch(gates / f"go-{mission_id}")
    outs = {}
    for name in ACTIONS:
        out = gates / f"out-{mission_id}-{name}"
        wait_for(out.exists, 60, f"racer {name} to answer")
        outs[name] = json.loads(out.read_text())
    touch(answered)
    won = [name for name, out in outs.items() if out["won"]]
    assert len(won) == 1, (mission_id, outs)
    winner, loser = won[0], ("b" if won[0] == "a" else "a")
    action = ACTIONS[winner]
    # The loser is told who decided what.
    assert f"already decided {action!r}" in outs[loser]["error"]
    assert f"pid {outs[winner]['pid']}" in outs[loser]["error"]
    # The worker applied the winner's answer to that question, and only it.
    wait_for(lambda: escalations(store_dir, mission_id), 60, "the answer taken")
    assert escalations(store_dir, mission_id)[0] == (f"escalation_{action}", first)
    if action == "retry":
        # It fails again and asks a new question: no answer is waiting for it.
        wait_for(lambda: len(waiting_questions(store_dir, mission_id)) == 2, 60, "question two")
        assert decision_requests(store_dir, mission_id) == 0
        assert escalations(store_dir, mission_id) == [(f"escalation_{action}", first)]
        orch.decide(mission_id, "abort")
    return action


@pytest.mark.slow
@pytest.mark.timeout(900)  # many rounds of real processes, on a busy machine too
def test_two_processes_racing_decide_get_exactly_one_winner(orchestrators, store_dir, tmp_path):
    orch = orchestrators(BATCH)
    gates = tmp_path / "gates"
    gates.mkdir()
    answered = [gates / f"answered-{i}" for i in range(ROUNDS)]
    missions = [asking(FailThenGate(gate, "always broken")) for gate in answered]
    (gates / "ids.json").write_text(json.dumps([m.id for m in missions]))
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(TESTS_DIR), str(store_dir), str(gates), name, action]
        )
        for name, action in ACTIONS.items()
    ]
    winners: dict[str, str] = {}
    try:
        for start in range(0, ROUNDS, BATCH):
            batch = missions[start : start + BATCH]
            for mission in batch:
                orch.run_async(mission)
            for index, mission in enumerate(batch, start):
                winners[mission.id] = race(orch, store_dir, gates, mission.id, answered[index])
            for mission in batch:
                ended = orch.wait(mission.id, 60)
                expected = "succeeded" if winners[mission.id] == "skip" else "failed"
                assert ended.status == expected, (mission.id, winners[mission.id], ended.error)
    finally:
        for proc in racers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in racers] == [0, 0]
    assert len(winners) == ROUNDS  # one winner in each of the 20 races
    print("winners:", sorted(winners.values()))


def test_an_answer_after_the_first_is_refused_and_answers_nothing_later(orchestrators, store_dir):
    orch = orchestrators(2)
    mission = asking(Fail("always broken"))
    orch.run_async(mission)
    wait_for(lambda: open_question(store_dir, mission.id), 60, "the mission to ask")
    first = open_question(store_dir, mission.id)

    assert orch.decide(mission.id, "retry") == "fragile"
    with pytest.raises(DecisionConflictError, match=r"already decided 'retry' by .*pid \d+"):
        orch.decide(mission.id, "skip")

    wait_for(lambda: len(waiting_questions(store_dir, mission.id)) == 2, 60, "question two")
    second = open_question(store_dir, mission.id)
    assert second is not None and second != first
    assert decision_requests(store_dir, mission.id) == 0  # the late skip was never stored
    assert escalations(store_dir, mission.id) == [("escalation_retry", first)]
    orch.decide(mission.id, "abort")
    assert orch.wait(mission.id, 60).status == "failed"
    assert escalations(store_dir, mission.id) == [
        ("escalation_retry", first),
        ("escalation_abort", second),
    ]


class _Step:
    id = "fragile"


def test_the_worker_ignores_an_answer_bound_to_an_earlier_question():
    requests = [
        {"kind": "decision", "payload": {"action": "skip", "question": "fragile:old"}},
        {"kind": "explanation", "payload": {"text": "stale", "question": "fragile:old"}},
    ]
    source = DecisionSource(None, lambda: [requests.pop(0)] if requests else [])  # type: ignore[arg-type]
    source.bind_question("fragile:new")
    assert source(_Step()) is None  # the stale decision
    assert source(_Step()) is None  # the stale explanation
    requests.append({"kind": "decision", "payload": {"action": "retry", "question": "fragile:new"}})
    assert source(_Step()) == "retry"
