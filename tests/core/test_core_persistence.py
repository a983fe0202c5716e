"""save(path) / resume(path) / Mission.load(path): JSON files, executors, continuing a mission."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from mission_widgets import CheckpointError, Mission, MissionStep
from mission_widgets.core.checkpoint import read_checkpoint


def file_executor(log: Path, label: str = "", block: Path | None = None):
    """Appends ``label+task`` to ``log``; raises while the file ``block`` exists.

    It records to a file so calls are counted even after a pickle round trip.
    """

    def executor(task, session, context):
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{label}{task}\n")
        if block is not None and block.exists():
            raise RuntimeError(f"{task} is blocked")
        return f"result of {task}"

    return executor


def calls(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").split() if log.exists() else []


@pytest.fixture
def stopped(tmp_path):
    """A mission that stopped at step b (aborted), saved to a file; b is unblocked after."""
    log, block = tmp_path / "calls.txt", tmp_path / "block"
    block.touch()
    mission = Mission(
        "make a report",
        steps=[
            MissionStep("a", "A", executor=file_executor(log)),
            MissionStep("b", "B", executor=file_executor(log, block=block), depends_on=["a"]),
            MissionStep("c", "C", executor=file_executor(log), depends_on=["b"]),
        ],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    )
    mission.session.set_memory("topic", "owls")
    mission.run()
    assert mission.status == "failed"
    assert calls(log) == ["A", "B", "B", "B"]
    path = tmp_path / "mission.json"
    assert mission.save(path) == os.fspath(path)
    block.unlink()
    log.unlink()
    return mission, path, log


def test_save_writes_human_readable_json(stopped):
    mission, path, _ = stopped
    text = path.read_text(encoding="utf-8")
    assert "\n  " in text  # indented, one field a line
    data = json.loads(text)
    assert data["id"] == mission.id
    assert data["goal"] == "make a report"
    assert data["status"] == "failed"
    assert [s["id"] for s in data["steps"]] == ["a", "b", "c"]
    assert [s["status"] for s in data["steps"]] == ["done", "failed", "pending"]
    assert data["steps"][0]["result"] == "result of A"
    assert data["steps"][1]["depends_on"] == ["a"]
    assert [e["attempt"] for e in data["steps"][1]["error_history"]] == [1, 2, 3]
    assert data["session_memory"] == {"topic": "owls"}
    assert data["stall_policy"]["on_max_retries"] == "abort"
    assert [e["event"] for e in data["audit_log"]] == [e["event"] for e in mission.audit_log]
    assert os.listdir(path.parent) == ["mission.json"]  # no temp file left


def test_resume_restores_state_and_stored_executors(stopped):
    mission, path, _ = stopped
    resumed = Mission("placeholder", backoff_factor=0)
    assert resumed.resume(path) is resumed
    assert resumed.id == mission.id
    assert resumed.goal == "make a report"
    assert resumed.status == "failed"  # restored as saved (aisdk)
    assert [s.status for s in resumed.steps] == ["done", "failed", "pending"]
    assert resumed.get_step("a").result == "result of A"
    assert resumed.get_step("b").error_history == mission.get_step("b").error_history
    assert all(callable(s.executor) for s in resumed.steps)
    assert resumed.session.get_memory("topic") == "owls"
    assert resumed.stall_policy.on_max_retries != "abort"  # policies are the resumer's own


def test_resume_continues_where_it_stopped(stopped):
    _, path, log = stopped
    resumed = Mission("placeholder", backoff_factor=0).resume(path).run()
    assert resumed.status == "succeeded", resumed.error
    assert calls(log) == ["B", "C"]  # a was done: not run again
    assert [s.result for s in resumed.steps] == ["result of A", "result of B", "result of C"]
    # attempts go on counting and the audit log goes on
    assert [e["attempt"] for e in resumed.get_step("b").error_history] == [1, 2, 3]
    starts = [e for e in resumed.audit_log if e["event"] == "step_start" and e["step_id"] == "b"]
    assert [e["attempt"] for e in starts] == [1, 2, 3, 4]
    assert [e["event"] for e in resumed.audit_log].count("mission_start") == 2


def test_executor_given_to_the_resuming_mission_wins(stopped, tmp_path):
    _, path, log = stopped
    new_log = tmp_path / "new.txt"
    resumed = Mission("placeholder", executor=file_executor(new_log, "new-")).resume(path)
    resumed.run()
    assert resumed.status == "succeeded"
    assert calls(log) == []
    assert calls(new_log) == ["new-B", "new-C"]


def test_step_executor_given_to_the_resuming_mission_wins(stopped, tmp_path):
    _, path, log = stopped
    new_log = tmp_path / "new.txt"
    resumed = Mission(
        "placeholder", steps=[MissionStep("c", "C", executor=file_executor(new_log, "own-"))]
    ).resume(path)
    resumed.run()
    assert resumed.status == "succeeded"
    assert calls(log) == ["B"]
    assert calls(new_log) == ["own-C"]


def test_load_builds_a_mission_from_a_file(stopped, tmp_path):
    mission, path, log = stopped
    loaded = Mission.load(path, backoff_factor=0)
    assert isinstance(loaded, Mission)
    assert loaded.id == mission.id
    assert loaded.run().status == "succeeded"
    assert calls(log) == ["B", "C"]
    # a finished mission loads finished, and running it again does nothing
    loaded.save(tmp_path / "done.json")
    again = Mission.load(tmp_path / "done.json")
    assert again.status == "succeeded"
    assert again.run().status == "succeeded"
    assert calls(log) == ["B", "C"]


def test_stored_step_executors_survive_a_stored_default_executor(tmp_path):
    log = tmp_path / "calls.txt"
    mission = Mission(
        "g",
        steps=[
            MissionStep("own", "X", executor=file_executor(log, "own-")),
            MissionStep("plain", "Y"),
        ],
        executor=file_executor(log, "default-"),
    )
    mission.save(tmp_path / "m.json")
    resumed = Mission.load(tmp_path / "m.json").run()
    assert resumed.status == "succeeded"
    assert calls(log) == ["own-X", "default-Y"]


def test_results_that_are_not_json_are_pickled(tmp_path):
    mission = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: {1, 2, 3})]).run()
    mission.save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert "{1, 2, 3}" in data["steps"][0]["result"]["repr"]
    assert Mission.load(tmp_path / "m.json").get_step("a").result == {1, 2, 3}


def test_unsaved_model_spec_and_planned_steps_round_trip(tmp_path):
    mission = Mission("g", model="demo:fast")
    mission.save(tmp_path / "m.json")
    loaded = Mission.load(tmp_path / "m.json")
    assert loaded.model == "demo:fast"
    assert loaded.steps is None


def test_unpicklable_executor_warns_and_the_file_is_still_written(tmp_path):
    lock = threading.Lock()
    mission = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: lock.locked())])
    with pytest.warns(RuntimeWarning, match="step 'a'.*cannot be pickled"):
        mission.save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert data["steps"][0]["executor"] is None


def test_checkpoint_path_saves_after_every_finished_step(tmp_path):
    path = tmp_path / "auto.json"
    seen = {}

    def second(task, session, context):
        data = read_checkpoint(path)  # the last full write plus its journal
        seen["statuses"] = [s["status"] for s in data["steps"]]
        return "ok"

    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=lambda t, s, c: "ok"),
            MissionStep("b", "b", executor=second),
        ],
    )
    mission.checkpoint_path = os.fspath(path)
    mission.run()
    assert seen["statuses"] == ["done", "pending"]
    assert json.loads(path.read_text(encoding="utf-8"))["status"] == "succeeded"


# -- broken files ----------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, -1])
def test_truncated_file_names_the_file(stopped, keep):
    _, path, _ = stopped
    text = path.read_text(encoding="utf-8")
    cut = len(text) - 1 if keep == -1 else int(len(text) * keep)
    path.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"mission\.json"):
        Mission("g").resume(path)
    with pytest.raises(CheckpointError, match=r"mission\.json"):
        Mission.load(path)


@pytest.mark.parametrize(
    "content",
    ["{not json}", "", "\x00\x01garbage", '["a list"]', '{"format": "mission_widgets.session"}'],
)
def test_corrupt_file_names_the_file(tmp_path, content):
    path = tmp_path / "bad_mission.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"bad_mission\.json"):
        Mission("g").resume(path)
    with pytest.raises(CheckpointError, match=r"bad_mission\.json"):
        Mission.load(path)


def test_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CheckpointError, match=r"binary\.json"):
        Mission.load(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"absent\.json"):
        Mission.load(tmp_path / "absent.json")


def test_invalid_content_names_the_file(stopped):
    _, path, _ = stopped
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["steps"][0]["description"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"mission\.json"):
        Mission("g").resume(path)


def test_corrupt_stored_executor_names_the_file_and_step(stopped):
    _, path, _ = stopped
    data = json.loads(path.read_text(encoding="utf-8"))
    data["steps"][2]["executor"] = "bm90IGEgcGlja2xl"  # base64 of "not a pickle"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"mission\.json.*'c'"):
        Mission("g").resume(path)
