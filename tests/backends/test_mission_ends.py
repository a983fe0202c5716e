"""Every mission that starts ends exactly once, with its real cause (backend and worker side):
BaseExceptions from executors, results that cannot be pickled, checkpoints that cannot be
written, a store that turns read-only under a running worker."""

from __future__ import annotations

import os

import pytest
from support.executors import Gated, echo, touch
from support.faults import (
    immutable,
    raise_custom_base,
    raise_keyboard_interrupt,
    raise_system_exit,
    return_lock,
    store_files,
)
from support.runtime import event_names, one_step, store_events, wait_for

from mission_widgets import Mission, MissionStep
from mission_widgets.runtime.processes import owner_token
from mission_widgets.runtime.store import MissionStore, StoreError
from mission_widgets.runtime.thread_backend import ThreadBackend
from mission_widgets.runtime.worker import read_end_from_log

BASE_EXCEPTIONS = [
    (raise_system_exit, ("SystemExit", "7")),
    (raise_keyboard_interrupt, ("KeyboardInterrupt",)),
    (raise_custom_base, ("CustomStop", "stopped by a custom BaseException")),
]


def ended_row(store_dir, mission_id: str, timeout: float = 30) -> dict:
    store = MissionStore(store_dir)

    def finished():
        row = store.row(mission_id)
        return row if row is not None and row["finished_at"] is not None else None

    return wait_for(finished, timeout, f"mission {mission_id} ends in the store")


def ends(store_dir, mission_id: str) -> list[dict]:
    return [
        e["payload"]
        for e in store_events(store_dir)
        if e["mission_id"] == mission_id and e["event"] == "mission_done"
    ]


@pytest.mark.parametrize("backend", ["thread", "subprocess"])
@pytest.mark.parametrize(("executor", "cause"), BASE_EXCEPTIONS)
def test_a_base_exception_ends_the_mission_as_what_it_is(
    orchestrators, store_dir, backend, executor, cause
):
    orch = orchestrators(backend=backend)
    mission = one_step(f"raises {cause}", executor)
    orch.run_async(mission)
    row = ended_row(store_dir, mission.id)
    assert row["status"] == "failed"
    assert all(part in row["error"] for part in cause), row["error"]
    assert "has exited" not in row["error"] and "exit code" not in row["error"]
    assert len(ends(store_dir, mission.id)) == 1
    assert event_names(store_dir, mission.id).count("mission_start") == 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the result is kept as its repr
@pytest.mark.parametrize("backend", ["thread", "subprocess"])
def test_a_result_that_cannot_be_pickled_ends_with_the_real_status(
    orchestrators, store_dir, backend
):
    orch = orchestrators(backend=backend)
    mission = one_step("returns a lock", return_lock)
    orch.run_async(mission)
    row = ended_row(store_dir, mission.id)
    assert row["status"] == "succeeded", row["error"]
    assert len(ends(store_dir, mission.id)) == 1
    wait_for(
        lambda: set(orch.status()["status"].astype(str)) == {"succeeded"},
        10,
        "status() says succeeded",
    )
    fresh = orchestrators(backend=backend)
    assert fresh.status().set_index("id").loc[mission.id, "status"] == "succeeded"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the checkpoint warning
@pytest.mark.parametrize("backend", ["thread", "subprocess"])
def test_a_checkpoint_that_cannot_be_written_loses_no_mission(orchestrators, store_dir, backend):
    orch = orchestrators(backend=backend)
    mission = Mission(
        "checkpoint in the way",
        steps=[MissionStep("a", "first", echo), MissionStep("b", "second", echo, depends_on=["a"])],
    )
    store = MissionStore(store_dir)
    # A directory where the checkpoint file goes: every checkpoint write fails.
    blocker = store.path_of("checkpoint", mission.id)
    os.makedirs(blocker)
    orch.run_async(mission)
    row = ended_row(store_dir, mission.id)
    assert row["status"] == "succeeded", row["error"]
    assert row["n_done"] == 2
    assert len(ends(store_dir, mission.id)) == 1


def test_a_store_that_turns_read_only_under_a_worker_gets_the_end_from_its_log(
    tmp_path, store_dir, launch, monkeypatch
):
    monkeypatch.setenv("MISSION_WIDGETS_END_RETRY_SECS", "1")
    gate, started = tmp_path / "gate", tmp_path / "started"
    mission = one_step("store goes read-only", Gated(gate, started=started, result="done"))
    runner = launch(mission)
    wait_for(started.exists, 30, "the worker runs the step")
    row = launch.row(mission.id)
    with immutable(*store_files(store_dir)):
        touch(gate)
        wait_for(lambda: runner.is_alive(row) is False, 30, "the worker exits")
        assert "could not write the mission's end" in runner.exit_reason(row)
    end = read_end_from_log(launch.store, mission.id)
    assert end is not None
    assert end["status"] == "succeeded"
    assert end["n_done"] == 1
    # The step's events the store refused are carried by the end, and said so in its text.
    assert {"step_success", "step_done"} <= {e["event"] for e in end["unwritten_events"]}
    assert "the store never took" in end["error"]
    assert "store_error" in end
    assert launch.row(mission.id)["finished_at"] is None  # nothing wrote it meanwhile


def test_read_end_from_log_ignores_a_log_without_an_end(store):
    assert read_end_from_log(store, "mission_without_log") is None
    with open(store.path_of("log", "m1"), "w") as log:
        log.write("[mission_widgets] END {not json\n")
    assert read_end_from_log(store, "m1") is None


class EndRefusingStore(MissionStore):
    """A real store whose writes of a ``mission_done`` event fail (a full disk at the end)."""

    def append_event(self, event, summary=None, final_state=None):
        if event["event"] == "mission_done":
            raise StoreError(f"{self.root}: injected: database or disk is full")
        return super().append_event(event, summary, final_state)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the sink's failure, as a warning
def test_a_thread_mission_whose_final_event_fails_still_ends_its_row(store_dir):
    store = EndRefusingStore(store_dir)
    backend = ThreadBackend(store)
    mission = one_step("final event refused", echo)
    store.register(mission.id, mission.goal, backend=backend.name, owner=owner_token())
    backend.launch(mission, 0.5)
    row = ended_row(store_dir, mission.id)
    assert row["status"] == "succeeded" and row["error"] is None
    assert len(ends(store_dir, mission.id)) == 1
    assert backend.is_alive(row) is False
