"""orch.timeline() and orch.export_trace() over real workers, read by another orchestrator
on the same store (as after a kernel restart): what they hold is what the events say."""

from __future__ import annotations

import gc
import json
import xml.etree.ElementTree as ET

import pytest
from support.executors import Gated
from support.faults import FailOnceThenShowContext
from support.runtime import asking, store_events, wait_for

from mission_widgets import Mission, MissionStep
from mission_widgets.core.policy import StallPolicy

WAIT = 60


def with_class(root, name):
    return [el for el in root.iter() if name in (el.get("class") or "").split()]


def run_three_kinds(orch, tmp_path):
    """A retry with backoff, a wait for a person (skipped), a cancel of a running step."""
    retried = Mission(
        "retries once",
        steps=[
            MissionStep("flaky", "fails once", FailOnceThenShowContext(tmp_path / "shown")),
            MissionStep(
                "after",
                "then this",
                Gated(tmp_path / "go", tmp_path / "after"),
                depends_on=["flaky"],
            ),
        ],
        backoff_factor=0.05,
    )
    waiting = asking(lambda *a: 1 / 0)
    gate = tmp_path / "never"
    cancelled = Mission(
        "is cancelled", steps=[MissionStep("held", "waits", Gated(gate, tmp_path / "started"))]
    )
    for mission in (retried, waiting, cancelled):
        orch.run_async(mission)
    wait_for(lambda: orch.waiting_on(waiting.id) == "fragile", 30, "the mission to ask")
    wait_for(lambda: (tmp_path / "started").exists(), 30, "the held step to start")
    wait_for(lambda: (tmp_path / "after").exists(), 30, "the retried mission's last step")
    (tmp_path / "go").touch()  # all three ran at once until here
    orch.decide(waiting.id, "skip")
    orch.cancel(cancelled.id)
    for mission in (retried, waiting, cancelled):
        orch.wait(mission.id, WAIT)
    return retried, waiting, cancelled


@pytest.mark.slow
def test_another_orchestrator_draws_every_attempt_from_the_store(
    orchestrators, store_dir, tmp_path
):
    retried, waiting, cancelled = run_three_kinds(orchestrators(3), tmp_path)
    later = orchestrators(3)  # knows only the store

    root = ET.fromstring(later.timeline().to_svg())

    starts = {
        (e["mission_id"], e["payload"]["step_id"], e["payload"]["attempt"]): e["timestamp"]
        for e in store_events(store_dir)
        if e["event"] == "step_start"
    }
    attempts = {
        (a.get("data-mission"), a.get("data-step"), int(a.get("data-attempt"))): a
        for a in with_class(root, "attempt")
    }
    assert len(with_class(root, "attempt")) == len(starts) == 6
    assert set(attempts) == set(starts)
    for key, at in starts.items():
        assert float(attempts[key].get("data-start")) == pytest.approx(at, abs=1e-6)
    assert attempts[(retried.id, "flaky", 1)].get("data-outcome") == "failed"
    assert attempts[(retried.id, "flaky", 2)].get("data-outcome") == "succeeded"
    assert attempts[(cancelled.id, "held", 1)].get("data-outcome") == "cancelled"
    assert len(with_class(root, "backoff")) == 1
    assert len(with_class(root, "wait")) == 1
    [cancel] = with_class(root, "cancel")
    assert cancel.text == "✕"
    # the lane: three missions at once in a window of three
    [lane] = with_class(root, "concurrency")
    assert lane.get("data-peak") == "3"
    assert not with_class(root, "now")  # nothing runs any more

    only = ET.fromstring(later.timeline(ids=[waiting.id]).to_svg())
    assert {a.get("data-mission") for a in with_class(only, "attempt")} == {waiting.id}
    with pytest.raises(KeyError, match="no mission 'nope'"):
        later.timeline(ids=["nope"])


@pytest.mark.slow
def test_the_chrome_trace_has_a_slice_per_attempt_and_marks(orchestrators, tmp_path):
    retried, waiting, cancelled = run_three_kinds(orchestrators(3), tmp_path)
    path = orchestrators(3).export_trace(tmp_path / "trace.json")

    document = json.loads((tmp_path / "trace.json").read_text(encoding="utf-8"))
    assert path == str(tmp_path / "trace.json")
    events = document["traceEvents"]
    names = {
        e["pid"]: e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "process_name"
    }
    pid = {
        mission.id: p
        for p, name in names.items()
        for mission in (retried, waiting, cancelled)
        if mission.id in name
    }
    slices = [e for e in events if e["ph"] == "X" and e["cat"].startswith("attempt")]
    assert len(slices) == 6
    flaky = sorted(
        (e for e in slices if e["pid"] == pid[retried.id] and e["args"]["step_id"] == "flaky"),
        key=lambda e: e["ts"],
    )
    assert [e["args"]["outcome"] for e in flaky] == ["failed", "succeeded"]
    [backoff] = [e for e in events if e["ph"] == "X" and e["cat"] == "backoff"]
    # the backoff fills the gap between the two attempts
    assert flaky[0]["ts"] + flaky[0]["dur"] <= backoff["ts"] + 1
    assert backoff["ts"] + backoff["dur"] == pytest.approx(flaky[1]["ts"], abs=1)
    assert all(e["tid"] == flaky[0]["tid"] != 0 for e in flaky + [backoff])
    assert [e["pid"] for e in events if e["ph"] == "X" and e["cat"] == "wait"] == [pid[waiting.id]]
    assert [e["pid"] for e in events if e["ph"] == "i" and e["name"] == "cancel"] == [
        pid[cancelled.id]
    ]
    assert max(e["args"]["running"] for e in events if e["ph"] == "C") == 3


def test_a_mission_in_flight_has_an_open_attempt_and_a_now_line(orchestrators, tmp_path):
    orch = orchestrators(2, backend="thread")
    gate, started = tmp_path / "gate", tmp_path / "started"
    mission = Mission(
        "in flight",
        steps=[MissionStep("held", "waits", Gated(gate, started))],
        stall_policy=StallPolicy(on_max_retries="abort"),
    )
    orch.run_async(mission)
    wait_for(started.exists, 30, "the step to start")
    root = ET.fromstring(orch.timeline().to_svg())
    [attempt] = with_class(root, "attempt")
    assert attempt.get("data-outcome") == "running" and attempt.get("data-end") == ""
    assert with_class(root, "now")
    gate.touch()
    orch.wait(mission.id, WAIT)
    root = ET.fromstring(orch.timeline().to_svg())
    assert with_class(root, "attempt")[0].get("data-outcome") == "succeeded"


@pytest.mark.parametrize("collecting", [True, False])
def test_reading_the_traces_leaves_the_garbage_collector_as_it_was(
    tmp_path, monkeypatch, collecting
):
    # read_traces holds the cyclic GC off while it builds (speed): on, off, or a failure.
    from mission_widgets.core.events import make_event
    from mission_widgets.orchestrator.views import read_traces
    from mission_widgets.runtime.store import MissionStore

    store = MissionStore(tmp_path / "store")
    store.register("m1", "a goal", backend="thread", owner=None)
    store.append_event(make_event("mission_start", "m1", goal="a goal"))
    was = gc.isenabled()
    (gc.enable if collecting else gc.disable)()
    try:
        assert [t.start is not None for t in read_traces(store)] == [True]
        assert gc.isenabled() is collecting

        def broken(*args, **kwargs):
            raise OSError("the disk went away")

        monkeypatch.setattr(store, "events_of", broken)
        with pytest.raises(OSError, match="went away"):
            read_traces(store)  # a store that fails while reading
        assert gc.isenabled() is collecting
    finally:
        (gc.enable if was else gc.disable)()
