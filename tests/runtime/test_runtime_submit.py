"""submit(): type checks, injection of the global model and session, picklability checked at
submit time, max_concurrent validation and live changes, clone(), the thread backend."""

from __future__ import annotations

import os
import threading
import time

import pytest
from support.executors import EchoModel, Gated, ReadMemory, Remember, echo
from support.runtime import (
    BackgroundRunAll,
    event_names,
    holds_for,
    one_step,
    spans,
    wait_for,
)

from mission_widgets import Mission, MissionOrchestrator, MissionStep, SharedSession
from mission_widgets.runtime.payload import MissionNotPicklableError


def locked_closure():
    """An executor that cannot be pickled (a closure over a threading.Lock), and its calls."""
    lock = threading.Lock()
    calls: list[str] = []

    def guarded(task, session, context):
        with lock:
            calls.append(task)
        return f"guarded: {task}"

    return guarded, calls


@pytest.mark.parametrize(
    "thing", ["a goal", None, {"goal": "x"}, MissionStep("s", "a step"), [Mission("in a list")]]
)
def test_submit_rejects_what_is_not_a_mission(orchestrators, thing):
    orch = orchestrators()
    with pytest.raises(TypeError, match="Mission"):
        orch.submit(thing)
    assert orch.pending_queue == []
    assert orch.status().empty


def test_submit_injects_global_model_and_session(orchestrators):
    model = EchoModel()
    session = SharedSession()
    session.set_memory("topic", "otters")
    orch = orchestrators(model=model, session=session)
    assert orch.global_model is model and orch.global_session is session

    needs_model = Mission("ask the model", steps=[MissionStep("ask", "answer")], backoff_factor=0)
    reads_memory = one_step("read the memory", ReadMemory("topic"))
    writes_memory = one_step("write the memory", Remember("found", "a raft"))
    own_model, own_session = EchoModel(), SharedSession()
    own = Mission(
        "own settings",
        steps=[MissionStep("ask", "answer")],
        model=own_model,
        session=own_session,
        backoff_factor=0,
    )
    assert orch.submit(needs_model) is orch  # submit returns the orchestrator (chaining)
    orch.submit(reads_memory).submit(writes_memory).submit(own)

    assert needs_model.model is model
    assert needs_model.session is session and reads_memory.session is session
    assert own.model is own_model and own.session is own_session
    assert orch.pending_queue == [needs_model, reads_memory, writes_memory, own]

    done = orch.run_all()
    assert [m.status for m in done] == ["succeeded"] * 4
    # The injected model and session travelled to the worker processes.
    assert needs_model.steps[0].result == "model answer"
    assert reads_memory.steps[0].result == "otters"
    # What a worker stored in the global session is back in the kernel's session.
    assert session.get_memory("found") == "a raft"
    assert own_session.get_memory("found") is None
    frame = orch.status().set_index("id")
    assert frame.loc[needs_model.id, "model"] == "echo-model"


@pytest.mark.parametrize("where", ["step", "default", "session"])
def test_submit_names_what_cannot_be_pickled(orchestrators, where):
    orch = orchestrators()
    guarded, _ = locked_closure()
    if where == "step":
        mission = one_step("unpicklable step", guarded)
        expected = "the executor of step 'work'"
    elif where == "default":
        mission = Mission("unpicklable default", steps=[MissionStep("work", "w")], executor=guarded)
        expected = "the mission's default executor"
    else:
        session = SharedSession()
        session.set_memory("lock", threading.Lock())
        mission = Mission(
            "unpicklable memory", steps=[MissionStep("work", "w", echo)], session=session
        )
        expected = "session memory 'lock'"
    with pytest.raises(MissionNotPicklableError) as info:
        orch.submit(mission)
    assert isinstance(info.value, TypeError)
    assert expected in str(info.value)
    assert mission.id in str(info.value)
    assert "backend='thread'" in str(info.value)
    # Nothing was queued or recorded, and nothing runs.
    assert orch.pending_queue == [] and orch.running == []
    assert orch.status().empty
    with pytest.raises(MissionNotPicklableError):
        orch.run_async(mission)
    assert orch.running == [] and orch.status().empty


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_concurrent_must_be_a_positive_int(orchestrators, store_dir, bad):
    with pytest.raises(ValueError, match="max_concurrent"):
        MissionOrchestrator(bad, store=store_dir)
    orch = orchestrators(2)
    with pytest.raises(ValueError, match="max_concurrent"):
        orch.max_concurrent = bad
    assert orch.max_concurrent == 2
    orch.max_concurrent = 5
    assert orch.max_concurrent == 5


def test_max_concurrent_can_grow_while_missions_run(orchestrators, store_dir, tmp_path):
    orch = orchestrators(1)
    gate = tmp_path / "gate"
    started = [tmp_path / f"started{i}" for i in range(4)]
    missions = [one_step(f"gated {i}", Gated(gate, started[i])) for i in range(4)]
    for mission in missions:
        orch.submit(mission)
    runner = BackgroundRunAll(orch)
    try:

        def n_started():
            return sum(path.exists() for path in started)

        wait_for(lambda: n_started() == 1, what="the first mission to start")
        holds_for(lambda: n_started() == 1, 0.6, "only one mission runs at max_concurrent=1")
        changed = time.time()
        orch.max_concurrent = 3
        wait_for(lambda: n_started() == 3, what="two more missions after raising the limit")
        holds_for(lambda: n_started() == 3, 0.3, "no fourth mission at max_concurrent=3")
    finally:
        gate.touch()
    done = runner.join()
    assert [m.status for m in done] == ["succeeded"] * 4
    times = spans(store_dir)
    starts = sorted(times[m.id][0] for m in missions)
    assert starts[0] < changed < starts[1]  # the others waited for the new limit


def test_clone_shallow_shares_queue_session_and_settings(orchestrators):
    model = EchoModel()
    orch = orchestrators(3, model=model, heartbeat_secs=0.5, cancel_grace_secs=1.5)
    first, second = one_step("first", echo), one_step("second", echo)
    orch.submit(first).submit(second)

    twin = orchestrators.track(orch.clone())
    assert twin is not orch
    assert twin.pending_queue == [first, second]
    assert all(a is b for a, b in zip(twin.pending_queue, orch.pending_queue))
    assert twin.global_session is orch.global_session
    assert twin.global_model is model
    assert (twin.max_concurrent, twin.heartbeat_secs, twin.cancel_grace_secs) == (3, 0.5, 1.5)
    assert twin.backend.name == orch.backend.name == "subprocess"
    assert twin.backend is not orch.backend
    assert twin.store.root == orch.store.root

    done = twin.run_all()
    assert done == [first, second]
    assert first.status == second.status == "succeeded"  # the same objects ran
    assert first.steps[0].result == "did: work of first"


def test_clone_deep_copies_queue_and_session(orchestrators, store_dir):
    session = SharedSession()
    session.set_memory("topic", "owls")
    orch = orchestrators(2, session=session)
    originals = [one_step("reads", ReadMemory("topic")), one_step("echoes", echo)]
    for mission in originals:
        orch.submit(mission)

    twin = orchestrators.track(orch.clone(deep=True))
    other = orchestrators.track(orch.clone(deep=True))
    copies = list(twin.pending_queue)
    assert [m.goal for m in copies] == ["reads", "echoes"]
    ids = {m.id for m in originals} | {m.id for m in copies} | {m.id for m in other.pending_queue}
    assert len(ids) == 6  # every copy has an id (store row, log, file) of its own
    for original, clone in zip(originals, copies):
        assert clone is not original
        assert clone.steps[0] is not original.steps[0]
        assert clone.steps[0].description == original.steps[0].description
    assert twin.global_session is not session
    assert twin.global_session.get_memory("topic") == "owls"
    # The copies share the clone's global session, as the originals share the original's.
    assert all(m.session is twin.global_session for m in copies)
    twin.global_session.set_memory("topic", "bats")
    assert session.get_memory("topic") == "owls"

    done = twin.run_all()
    assert [m.status for m in done] == ["succeeded", "succeeded"]
    assert copies[0].steps[0].result == "bats"
    assert [m.status for m in originals] == ["pending", "pending"]
    assert orch.pending_queue == originals
    assert orch.run_all() == originals
    assert originals[0].steps[0].result == "owls"
    assert event_names(store_dir, originals[0].id)[-1] == "mission_done"


def test_thread_backend_runs_a_mission_that_cannot_be_pickled(orchestrators, store_dir):
    guarded, calls = locked_closure()
    subprocess_orch = orchestrators()
    with pytest.raises(MissionNotPicklableError):
        subprocess_orch.submit(one_step("locked", guarded))

    orch = orchestrators(2, backend="thread")
    assert orch.backend.name == "thread"
    missions = [one_step("locked one", guarded), one_step("locked two", guarded)]
    for mission in missions:
        orch.submit(mission)
    done = orch.run_all()
    assert [m.status for m in done] == ["succeeded", "succeeded"]
    assert [m.steps[0].result for m in done] == [
        "guarded: work of locked one",
        "guarded: work of locked two",
    ]
    assert sorted(calls) == ["work of locked one", "work of locked two"]  # ran in this process
    frame = orch.status().set_index("id")
    for mission in missions:
        assert frame.loc[mission.id, "backend"] == "thread"
        assert frame.loc[mission.id, "status"] == "succeeded"
        assert frame.loc[mission.id, "pid"] == os.getpid()
        names = event_names(store_dir, mission.id)
        assert names[0] == "mission_start" and names[-1] == "mission_done"
        assert "step_done" in names


def test_thread_backend_run_all_returns_once_the_store_has_the_end(orchestrators, store_dir):
    """A thread mission sets its status a moment before its final event reaches the store:
    run_all() must not return in between (status() would still say running)."""
    orch = orchestrators(4, backend="thread")
    for _ in range(60):  # the window is narrow: try it many times
        missions = [one_step(f"round trip {i}", echo) for i in range(4)]
        for mission in missions:
            orch.submit(mission)
        assert [m.status for m in orch.run_all()] == ["succeeded"] * 4
        rows = orch.status().set_index("id")
        assert [rows.loc[m.id, "status"] for m in missions] == ["succeeded"] * 4
