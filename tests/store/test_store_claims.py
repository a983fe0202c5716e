"""Atomic claims and requests between processes: real processes race on one
store file; each mission is claimed (and started) exactly once, each request taken once."""

from __future__ import annotations

import collections
import json
import os
import sqlite3

import pytest
from support.executors import touch
from support.waiting import wait_for

from mission_widgets.core.events import make_event
from mission_widgets.runtime.store import MissionStore

N_PROCESSES = 6
N_MISSIONS = 40

RACER = """
import sys
from support.executors import touch, wait_for_path
from mission_widgets.runtime.store import MissionStore

root, me, gate, mode, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
store = MissionStore(root, create=False, role="worker")
touch(gate + "." + me)  # ready
wait_for_path(gate)
for mission_id in ids:
    if mode == "adopt" and not store.adopt(mission_id, me, "dead-kernel"):
        continue
    if store.claim(mission_id, me):
        print(mission_id, flush=True)
"""


def _race(tmp_path, store, spawn, mode, owner):
    """N processes claim (after adopting, in mode "adopt") the same queued rows at once;
    each records a mission_start for the rows it won, as a launcher would."""
    ids = [f"m{i:03d}" for i in range(N_MISSIONS)]
    for mission_id in ids:
        store.register(mission_id, "goal", backend="subprocess", owner=owner)
    gate = tmp_path / f"gate-{mode}"
    names = [f"proc{i}" for i in range(N_PROCESSES)]
    racers = [spawn(RACER, str(store.root), name, str(gate), mode, *ids) for name in names]
    wait_for(
        lambda: all(os.path.exists(f"{gate}.{name}") for name in names),
        timeout=60,
        what="every racer ready",
    )
    touch(gate)
    won = {}
    for name, racer in zip(names, racers):
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        won[name] = out.split()
        for mission_id in won[name]:
            store.append_event(make_event("mission_start", mission_id, claimed_by=name))
    starts = collections.Counter(
        e["mission_id"]
        for mid in ids
        for e in store.events_for(mid)
        if e["event"] == "mission_start"
    )
    return ids, won, starts


@pytest.mark.parametrize(("mode", "owner"), [("claim", None), ("adopt", "dead-kernel")])
def test_racing_processes_start_each_mission_exactly_once(tmp_path, store, spawn, mode, owner):
    ids, won, starts = _race(tmp_path, store, spawn, mode, owner)
    assert starts == {mid: 1 for mid in ids}  # none lost, none run twice
    assert sorted(mid for got in won.values() for mid in got) == ids
    for me, got in won.items():
        for mission_id in got:
            assert store.row(mission_id)["claimed_by"] == me
            assert mode == "claim" or store.row(mission_id)["owner"] == me


def test_claim_only_a_queued_row_of_its_owner(store):
    store.register("m", "goal", backend="subprocess", owner="kernel-a")
    assert not store.claim("m", "kernel-b")  # another owner's queue: adopt() first
    assert not store.claim("missing", "kernel-a")
    assert store.claim("m", "kernel-a")
    assert store.claim("m", "kernel-a")  # claimed by this owner already
    row = store.row("m")
    assert row["claimed_by"] == "kernel-a" and row["claimed_at"] is not None
    assert not store.claim("m", "kernel-b")
    store.set_process("m", 4242, None)
    store.register("n", "goal", backend="subprocess", owner="kernel-a")
    store.append_event(make_event("mission_start", "n"), {"status": "running"})
    assert not store.claim("n", "kernel-a")  # started already
    store.register("m", "goal again", backend="subprocess", owner="kernel-a")
    assert store.row("m")["claimed_by"] is None  # submitted again: a new claim
    assert store.claim("m", "kernel-a")


def test_adopt_is_a_compare_and_swap_of_the_owner(store):
    store.register("m", "goal", backend="subprocess", owner="dead")
    assert not store.adopt("m", "b", "someone-else")
    assert store.adopt("m", "a", "dead")
    assert not store.adopt("m", "b", "dead")  # a won: b's expectation is stale
    assert store.row("m")["owner"] == "a"
    # a dies after claiming, before launching: its stale claim goes with the adoption
    assert store.claim("m", "a")
    assert store.adopt("m", "b", "a")
    assert store.row("m")["claimed_by"] is None
    assert not store.claim("m", "a") and store.claim("m", "b")
    store.register("orphan", "goal", backend="subprocess", owner=None)
    assert store.adopt("orphan", "b", None)


OLD_SCHEMA = """
CREATE TABLE missions (id TEXT PRIMARY KEY, goal TEXT NOT NULL, status TEXT NOT NULL,
    backend TEXT, owner TEXT, pid INTEGER, pid_started REAL, submitted_at REAL, started_at REAL,
    finished_at REAL, last_heartbeat REAL, last_activity REAL,
    n_steps INTEGER NOT NULL DEFAULT 0, n_done INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0, progress REAL NOT NULL DEFAULT 0, error TEXT,
    stall_reason TEXT, model TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0, state_json TEXT);
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, mission_id TEXT NOT NULL,
    event TEXT NOT NULL, timestamp REAL NOT NULL, payload TEXT NOT NULL);
CREATE INDEX events_by_mission ON events (mission_id, seq);
INSERT INTO missions (id, goal, status, owner) VALUES ('m', 'goal', 'pending', 'k');
INSERT INTO missions (id, goal, status, finished_at) VALUES ('f', 'goal', 'succeeded', 1.0);
"""


def test_a_store_of_the_first_schema_gains_the_new_columns_and_tables(tmp_path):
    """A store written by the first release (its schema, verbatim) is migrated on open."""
    root = tmp_path / "old"
    MissionStore(root).close()
    (root / "store.sqlite").unlink()
    conn = sqlite3.connect(root / "store.sqlite")
    conn.executescript(OLD_SCHEMA)
    conn.close()
    store = MissionStore(root)
    row = store.row("m")
    from mission_widgets.runtime.store_row import ROW_COLUMNS

    assert tuple(row) == ROW_COLUMNS  # every MissionRow key, in table order
    assert row["claimed_by"] is None and store.claim("m", "k")
    assert store.add_request("m", "cancel") > 0
    before = store.finished_signature()
    assert store.prune(ids=["f"]) == ["f"]
    assert store.finished_signature() != before


# -- requests --------------------------------------------------------------------------------


def test_requests_carry_payloads_and_are_taken_once(store):
    store.add_request("a", "decision", {"action": "retry"})
    store.add_request("b", "cancel")
    store.add_request("a", "explanation", {"text": "the API key expired"})
    assert store.take_requests(mission_ids=["c"]) == []
    taken = store.take_requests(mission_ids=["a"], kinds=["decision"])
    assert [(r["mission_id"], r["kind"], r["payload"]) for r in taken] == [
        ("a", "decision", {"action": "retry"})
    ]
    rest = store.take_requests()
    assert [(r["kind"], r["payload"]) for r in rest] == [
        ("cancel", None),
        ("explanation", {"text": "the API key expired"}),
    ]
    assert store.take_requests() == []
    with pytest.raises(ValueError, match="kind"):
        store.add_request("a", "cancle")
    with pytest.raises(ValueError, match="not JSON"):
        store.add_request("a", "decision", {"action": object()})


TAKER = """
import json, os, sys, time
from support.executors import wait_for_path
from mission_widgets.runtime.store import MissionStore

store = MissionStore(sys.argv[1], create=False, role="worker")
wait_for_path(sys.argv[2])
taken = []
while True:
    stopping = os.path.exists(sys.argv[3])  # read before taking: nothing sent after it
    got = store.take_requests(kinds=["decision"])
    taken += [r["id"] for r in got]
    if not got:
        if stopping:
            break
        time.sleep(0.01)
print(json.dumps(taken))
"""


def test_racing_takers_take_each_request_exactly_once(tmp_path, store, spawn):
    gate, stop = tmp_path / "gate", tmp_path / "stop"
    takers = [spawn(TAKER, str(store.root), str(gate), str(stop)) for _ in range(4)]
    touch(gate)
    sent = [store.add_request(f"m{i % 7}", "decision", {"action": "skip"}) for i in range(200)]
    touch(stop)
    taken = []
    for taker in takers:
        out, err = taker.communicate(timeout=120)
        assert taker.returncode == 0, err
        taken += json.loads(out)
    assert sorted(taken) == sorted(sent)
