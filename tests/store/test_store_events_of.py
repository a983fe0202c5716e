"""store.events_of(): the events of all missions (or some) in one read, less the names asked
to skip, decoded as events_since() decodes them, corrupt rows included."""

from __future__ import annotations

import json
import sqlite3

from mission_widgets.core.events import make_event


def insert(store, rows):
    """Write events rows as they are, bypassing the store's own checks (as damage would)."""
    conn = sqlite3.connect(store.db_path)
    with conn:
        conn.executemany(
            "INSERT INTO events (mission_id, event, timestamp, payload) VALUES (?, ?, ?, ?)",
            rows,
        )
    conn.close()


def row(event):
    return (event["mission_id"], event["event"], event["timestamp"], json.dumps(event))


def test_all_events_in_order_without_the_skipped_names(store):
    events = [
        make_event(name, f"m{i % 3}", timestamp=100.0 + i, step_id="s")
        for i, name in enumerate(["mission_start", "heartbeat", "step_start", "progress"] * 3)
    ]
    insert(store, [row(e) for e in events])

    got = store.events_of(skip=("heartbeat", "progress"))

    assert [(e["mission_id"], e["event"], e["timestamp"]) for e in got] == [
        (e["mission_id"], e["event"], e["timestamp"])
        for e in events
        if e["event"] not in ("heartbeat", "progress")
    ]
    assert store.events_of() == [e for _, e in store.events_since(0)]
    assert [e["seq"] for e in got] == sorted(e["seq"] for e in got)


def test_the_events_of_some_missions_in_the_order_they_were_written(store):
    # More than one query's worth of ids (500 a query), their events interleaved.
    ids = [f"m{i}" for i in range(501)]
    events = [make_event("step_start", mid, timestamp=1.0 + k) for k, mid in enumerate(ids)]
    events += [make_event("step_success", mid, timestamp=2000.0 + k) for k, mid in enumerate(ids)]
    events.insert(1, make_event("step_start", "m500", timestamp=1.5))  # before m1's
    insert(store, [row(e) for e in events] + [row(make_event("x", "other", timestamp=9.0))])

    got = store.events_of(reversed(ids))

    assert [(e["mission_id"], e["timestamp"]) for e in got] == [
        (e["mission_id"], e["timestamp"]) for e in events
    ]
    assert [e["mission_id"] for e in store.events_of(["m3", "m3"])] == ["m3", "m3"]
    assert store.events_of([]) == []


def test_corrupt_rows_are_store_errors_naming_them_and_hide_nothing_else(store):
    good = make_event("step_start", "m1", timestamp=5.0, step_id="a")
    insert(
        store,
        [
            row(good),
            ("m1", "step_start", 6.0, '{"event": "step_start", "timestamp": 6'),  # cut short
            ("m1", "step_start", 7.0, json.dumps(good) + '{"x": 1}'),  # two values
            ("m1", "step_start", 8.0, "[1, 2]"),  # not an object
            ("m1", "step_start", 9.0, "  " + json.dumps(good) + "\n"),  # JSON all the same
        ],
    )

    got = store.events_of()

    assert [e["event"] for e in got] == ["step_start"] + ["store_error"] * 3 + ["step_start"]
    for event in got[1:4]:
        assert f"event #{event['seq']} of mission m1 is corrupt" in event["error_message"]
    assert got[0] == {**good, "seq": got[0]["seq"]} and got[4] == {**good, "seq": got[4]["seq"]}

    def timeless(events):  # a store_error is stamped when it is read
        return [{**e, "timestamp": None} for e in events]

    since = [e for _, e in store.events_since(0)]
    assert timeless(got) == timeless(since) == timeless(store.events_for("m1"))
