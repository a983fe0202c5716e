"""Batched forwarding of the Dask backend, on its own parts (no cluster): the worker's
publisher sends a run's messages as one batch, and the kernel's ingest writes a batch in
one store transaction, telling of ended missions only once that transaction committed."""

from __future__ import annotations

from typing import Any

import pytest

from mission_widgets.core.events import make_event
from mission_widgets.runtime.dask_ingest import TopicIngest
from mission_widgets.runtime.dask_worker import BATCH_SECS, _Publisher
from mission_widgets.runtime.store import MissionStore


class FakeLoop:
    """The worker's event loop as the publisher uses it: callbacks are kept, run by hand."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[Any, tuple[Any, ...]]] = []
        self.timers: list[tuple[float, Any]] = []

    def add_callback(self, callback: Any, *args: Any) -> None:
        self.callbacks.append((callback, args))

    def call_later(self, delay: float, callback: Any) -> None:
        self.timers.append((delay, callback))

    def run_callbacks(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for callback, args in callbacks:
            callback(*args)


class FakeWorker:
    def __init__(self) -> None:
        self.loop = FakeLoop()
        self.sent: list[tuple[str, Any]] = []

    def log_event(self, topic: str, message: Any) -> None:
        self.sent.append((topic, message))


def test_a_short_run_travels_as_one_batch_sent_with_its_end():
    worker = FakeWorker()
    publisher = _Publisher(worker, "m1", "topic", "topic:heartbeat")
    publisher.event(make_event("dask_start", "m1", goal="g"))
    publisher.event(make_event("mission_start", "m1"))
    publisher.log("some output\n")
    assert worker.sent == []  # waiting for more, a timer armed once
    assert len(worker.loop.callbacks) == 1

    publisher.event(make_event("mission_done", "m1", status="succeeded"))
    [(topic, message)] = worker.sent
    assert topic == "topic"
    assert message["kind"] == "batch" and message["mission_id"] == "m1"
    kinds = [(m["kind"], m.get("event", {}).get("event")) for m in message["messages"]]
    assert kinds == [
        ("event", "dask_start"),
        ("event", "mission_start"),
        ("log", None),
        ("event", "mission_done"),
    ]
    uids = [m["uid"] for m in message["messages"]]
    assert [int(uid.partition(":")[2]) for uid in uids] == [1, 2, 3, 4]
    assert publisher.final is message["messages"][-1]

    worker.loop.run_callbacks()  # the timer of the first message finds nothing left
    [(_, flush)] = worker.loop.timers
    flush()
    assert len(worker.sent) == 1


def test_a_lone_message_leaves_after_batch_secs_as_itself():
    worker = FakeWorker()
    publisher = _Publisher(worker, "m1", "topic", "topic:heartbeat")
    publisher.event(make_event("step_start", "m1", step_id="a"))
    publisher.heartbeat()  # heartbeats do not wait
    assert worker.sent == [("topic:heartbeat", {"kind": "heartbeat", "mission_id": "m1"})]

    worker.loop.run_callbacks()
    [(delay, flush)] = worker.loop.timers
    assert delay == BATCH_SECS
    flush()
    topic, message = worker.sent[-1]
    assert topic == "topic" and message["kind"] == "event"
    assert message["event"]["event"] == "step_start"


class FakeClient:
    id = "fake-client"
    status = "running"

    def get_events(self, topic: str) -> list[Any]:
        return []


def event_message(run: str, n: int, mission_id: str, name: str, **fields: Any) -> dict:
    return {
        "kind": "event",
        "mission_id": mission_id,
        "uid": f"{run}:{n}",
        "event": make_event(name, mission_id, **fields),
        "summary": None,
        "final": None,
    }


def a_run(run: str, mission_id: str) -> list[dict]:
    return [
        event_message(run, 1, mission_id, "dask_start", goal="g", n_steps=1, worker="w", pid=7),
        event_message(run, 2, mission_id, "mission_start"),
        event_message(run, 3, mission_id, "mission_done", status="succeeded"),
    ]


@pytest.fixture
def ingest(tmp_path):
    store = MissionStore(tmp_path / "store")
    told: list[tuple[str, bool, Any]] = []

    def on_end(mission_id: str, written: bool) -> None:
        # What a woken orchestrator would read, on a connection of its own.
        row = MissionStore(store.root).row(mission_id)
        told.append((mission_id, written, row and row["finished_at"]))

    ingest = TopicIngest(
        store,
        FakeClient(),
        ("topic", "topic:heartbeat"),
        backend_name="dask",
        on_start=lambda mission_id, event: None,
        on_end=on_end,
        on_tick=lambda: None,
    )
    ingest.told = told  # type: ignore[attr-defined]
    yield ingest
    ingest.close()


def test_a_batch_of_two_runs_is_one_store_transaction_and_ends_are_told_after_it(ingest):
    statements: list[str] = []
    ingest.store._connect().set_trace_callback(statements.append)
    batch = {"kind": "batch", "mission_id": "m1", "messages": a_run("r1", "m1")}
    ingest._receive((0.0, batch))
    ingest._receive((0.0, {"kind": "batch", "mission_id": "m2", "messages": a_run("r2", "m2")}))

    assert ingest.flush() == 6
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    for mission_id in ("m1", "m2"):
        names = [e["event"] for e in ingest.store.events_for(mission_id)]
        assert names == ["dask_start", "mission_start", "mission_done"]
    assert [(m, written) for m, written, _ in ingest.told] == [("m1", True), ("m2", True)]
    assert all(finished_at is not None for _, _, finished_at in ingest.told)

    ingest._receive((0.0, batch))  # the same messages again (a replay, a second kernel)
    assert ingest.flush() == 0


def test_one_bad_message_costs_only_itself(ingest):
    bad = event_message("r2", 1, "m2", "dask_start", goal="g", n_steps=1)
    del bad["event"]["timestamp"]  # cannot be written
    good_before = a_run("r1", "m1")[0]
    good_after = a_run("r3", "m3")[0]
    ingest._receive((0.0, {"kind": "batch", "messages": [good_before, bad, good_after]}))

    with pytest.raises(KeyError):
        ingest.flush()
    assert ingest.store.row("m1") is not None
    assert ingest.store.row("m2") is None  # rolled back whole, its uid too
    assert ingest.flush() == 1  # the one after it waited for this flush
    assert ingest.store.row("m3") is not None
