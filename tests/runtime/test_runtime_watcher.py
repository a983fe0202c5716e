"""One source of truth: the watcher keeps mirrors current and refills the window
without anyone polling; subscribe(); poll_async() as aisdk's named list; AsyncHandle as a
Future; aisdk's session isolation and model precedence."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import pytest
from support.executors import EchoModel, Fail, Gated, ReadMemory, Remember, Sleeper, echo
from support.runtime import max_overlap, one_step, spans, wait_for, worker_processes

from mission_widgets import Mission, MissionStep
from mission_widgets.orchestrator.handles import MissionFailed


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "mission-watcher"]


def test_mirrors_follow_the_store_without_polling(orchestrators):
    """Defect: `while orch.active: sleep` never ended, Mission.status kept its submit value."""
    orch = orchestrators(2)
    mission = one_step("quick", echo)
    handle = orch.run_async(mission)
    assert orch.active and orch.watching

    # Nobody calls poll_async(): the loop of the issue ends by itself.
    wait_for(lambda: not orch.active, 30, "orch.active to turn False by itself")

    assert mission.status == "succeeded" and handle.status == "succeeded"
    assert mission in orch.completed and orch.running == []
    assert orch.counts()["succeeded"] == 1 and orch.counts()["running"] == 0
    assert handle.done() and handle.result(timeout=0) == mission.steps[0].result
    assert mission.result == mission.steps[0].result and mission.result.startswith("did: ")
    assert handle.mission is mission
    assert orch.status().set_index("id").loc[mission.id, "status"] == "succeeded"
    # Idle: the watcher thread has ended.
    wait_for(lambda: not orch.watching and not watcher_threads(), 5, "the watcher to exit")


def test_window_drains_at_max_concurrent_with_no_polling(orchestrators, store_dir):
    """Defect: after start_queued(), nothing else started unless someone polled."""
    orch = orchestrators(2)
    missions = [one_step(f"m{i}", Sleeper(0.8)) for i in range(6)]
    for mission in missions:
        orch.submit(mission)

    started = orch.start_queued()
    assert started == missions[:2]

    def all_ended_in_status():
        frame = orch.status()  # reads only; refills nothing
        return (frame["status"] == "succeeded").sum() == 6

    wait_for(all_ended_in_status, 60, "the queue to drain by itself")
    assert max_overlap(spans(store_dir)[m.id] for m in missions) == 2
    wait_for(lambda: all(m.status == "succeeded" for m in missions), 5, "mirrors to agree")
    assert orch.pending_queue == [] and not orch.active
    wait_for(lambda: not orch.watching, 5, "the watcher to exit")


def test_no_watcher_while_idle_and_one_per_orchestrator(orchestrators, tmp_path):
    orch = orchestrators(2)
    orch.submit(one_step("queued only", echo))
    assert not orch.watching  # queued but not draining: nothing in flight
    gate = tmp_path / "gate"
    for i in range(3):
        orch.run_async(one_step(f"gated {i}", Gated(gate)))
    assert len(watcher_threads()) == 1
    gate.touch()
    wait_for(lambda: not orch.active and not watcher_threads(), 30, "the watcher to exit")
    orch.run_async(one_step("again", echo))  # restarted by the next start
    assert orch.watching
    wait_for(lambda: not orch.watching, 30, "the watcher to exit again")


def test_subscribers_hear_each_change_until_they_unsubscribe(orchestrators):
    orch = orchestrators(2)
    changes = []
    unsubscribe = orch.subscribe(changes.append)
    first = one_step("first", echo)
    orch.run_async(first)
    wait_for(lambda: any(first in c.completed for c in changes), 30, "a change with the end")
    assert all(c.changed or not c.completed for c in changes)

    unsubscribe()
    seen = len(changes)
    second = one_step("second", echo)
    orch.run_async(second).wait(30)
    assert len(changes) == seen


def test_poll_async_reads_as_a_mapping_and_reports_each_change_once(orchestrators):
    orch = orchestrators(2)
    mission = one_step("polled", echo)
    orch.run_async(mission)
    wait_for(lambda: mission.is_finished and mission not in orch.running, 30, "the end")

    result = orch.poll_async()  # the watcher saw the end first: still reported once here
    assert result["completed"] == [mission] == result.completed
    assert result["still_running"] == 0
    assert dict(result)["n_events"] >= 1
    with pytest.raises(KeyError, match="still_running"):
        result["nope"]
    again = orch.poll_async()
    assert again["completed"] == [] and again.n_events == 0


def test_async_handle_is_a_future(orchestrators, tmp_path):
    orch = orchestrators(3, cancel_grace_secs=1.0)
    called = threading.Event()
    good = orch.run_async(one_step("good", echo))
    good.add_done_callback(lambda future: called.set())
    bad = orch.run_async(one_step("bad", Fail("kaput"), max_retries=0))
    stuck = orch.run_async(one_step("stuck", Gated(tmp_path / "never")))

    assert good.result(timeout=30) == good.mission.steps[0].result  # the result value
    assert good.mission.status == "succeeded"
    assert called.wait(5)
    with pytest.raises(MissionFailed, match="kaput"):
        bad.result(timeout=30)
    assert isinstance(bad.exception(), MissionFailed)
    assert bad.exception().mission is bad.mission and bad.mission.error
    with pytest.raises(TimeoutError):
        stuck.result(timeout=0.3)

    assert stuck.cancel() is True
    assert stuck.cancelled() and stuck.done()
    with pytest.raises(CancelledError):
        stuck.result(timeout=0)
    assert stuck.mission.status == "cancelled"
    assert stuck.cancel() is False
    assert worker_processes(stuck.mission_id) == []


def test_missions_are_isolated_unless_a_session_is_given(orchestrators):
    orch = orchestrators(1)
    assert orch.global_session is None
    writer = one_step("writer", Remember("secret", "42"))
    reader = one_step("reader", ReadMemory("secret"))
    orch.submit(writer).submit(reader)
    orch.run_all()
    assert reader.steps[0].result is None  # the writer's memory did not leak to it
    assert writer.session is not reader.session


def test_model_precedence_and_a_missing_model_refused_at_start(orchestrators, store_dir):
    orch_model, own_model, run_model = EchoModel(), EchoModel(), EchoModel()
    run_model.label = "run-model"
    orch = orchestrators(2, model=orch_model)
    own = Mission("own", steps=[MissionStep("ask", "answer")], model=own_model, backoff_factor=0)
    inherits = Mission("inherits", steps=[MissionStep("ask", "answer")], backoff_factor=0)
    orch.submit(own).submit(inherits)
    assert own.model is own_model and inherits.model is orch_model

    overridden = Mission("run", steps=[MissionStep("ask", "answer")], model=own_model)
    orch.run_async(overridden, model=run_model).wait(30)
    assert overridden.model is run_model  # run_async(model=) > the mission's

    bare = orchestrators(2)
    lacking = Mission("no model", steps=[MissionStep("ask", "answer")], backoff_factor=0)
    assert bare.submit(lacking) is bare  # accepted at submit (aisdk's idiom)
    done = bare.run_all()
    assert done == [lacking] and lacking.status == "failed"
    assert "needs a model" in lacking.error and "ask" in lacking.error
    row = bare.status().set_index("id").loc[lacking.id]
    assert row["status"] == "failed" and "needs a model" in row["error"]
    assert not (store_dir / "logs" / f"{lacking.id}.log").exists()  # nothing launched

    later = Mission("model later", steps=[MissionStep("ask", "answer")], backoff_factor=0)
    bare.submit(later)
    began = time.monotonic()
    assert bare.run_all(model=EchoModel()) == [later]
    assert later.status == "succeeded" and later.steps[0].result == "model answer"
    assert time.monotonic() - began < 30


def test_attaching_builds_finished_mirrors_only_when_read(orchestrators, store_dir):
    """15.4/15.5: a new orchestrator knows finished missions by id and status; their events
    and final state are read when a mission is first asked for."""
    first = orchestrators(2)
    missions = [one_step(f"done {i}", echo) for i in range(3)]
    for mission in missions:
        first.submit(mission)
    first.run_all()
    first.close()

    fresh = orchestrators(2)

    assert len(fresh.completed) == 3
    assert all(fresh.completed.loaded(m.id) is None for m in missions)  # nothing built yet
    assert fresh.counts()["succeeded"] == 3
    assert list(fresh.missions) == [m.id for m in missions]  # submission order
    assert all(fresh.completed.loaded(m.id) is None for m in missions)
    mirror = fresh.get(missions[1].id)  # built now, from the store
    assert fresh.completed.loaded(missions[1].id) is mirror
    assert mirror.status == "succeeded" and mirror.steps[0].result == "did: work of done 1"
    assert fresh.completed.loaded(missions[0].id) is None
    assert [m.id for m in fresh.completed] == [m.id for m in missions]
    assert mirror in fresh.completed and fresh.counts()["succeeded"] == 3


class FailTwice:
    """Fails its first two attempts (a file counts them), then succeeds."""

    def __init__(self, counter):
        self.counter = str(counter)

    def __call__(self, task, session, context):
        counter = Path(self.counter)
        tries = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(tries + 1))
        time.sleep(0.2)  # long enough for the samples to see each attempt
        if tries < 2:
            raise RuntimeError(f"attempt {tries + 1} fails")
        return "third time lucky"


def test_progress_never_goes_backwards_in_mirrors_or_status(orchestrators, tmp_path):
    """12.7: a retried step keeps its share; a cancel keeps the progress reached."""
    orch = orchestrators(2, cancel_grace_secs=1.0)
    retried = Mission(
        "retries",
        steps=[
            MissionStep("a", "first", echo),
            MissionStep("b", "retried", FailTwice(tmp_path / "tries"), depends_on=["a"]),
            MissionStep("c", "last", echo, depends_on=["b"]),
        ],
        backoff_factor=0,
    )
    seen: list[tuple[float, float]] = []

    def sample() -> bool:
        row = orch.status().set_index("id").loc[retried.id]
        seen.append((retried.progress, float(row["progress"])))
        return retried.is_finished and retried not in orch.running

    orch.run_async(retried)
    wait_for(sample, 30, "the retried mission to end", interval=0.01)
    assert retried.status == "succeeded" and len(seen) >= 2
    mirror, table = zip(*seen, strict=True)
    assert list(mirror) == sorted(mirror) and list(table) == sorted(table)

    gate = tmp_path / "gate"
    half = Mission(
        "half done",
        steps=[
            MissionStep("a", "first", echo),
            MissionStep("b", "waits", Gated(gate, tmp_path / "b.started"), depends_on=["a"]),
        ],
        backoff_factor=0,
    )
    orch.run_async(half)
    wait_for((tmp_path / "b.started").exists, 30, "the second step")
    wait_for(lambda: half.progress >= 0.5, 5, "the mirror to count the first step")
    reached = orch.status().set_index("id").loc[half.id, "progress"]
    assert reached >= 0.5
    assert orch.cancel(half.id) is True
    assert half.status == "cancelled" and half.progress >= 0.5
    assert orch.status().set_index("id").loc[half.id, "progress"] >= reached
