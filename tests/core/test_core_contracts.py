"""Group-1 contracts: status Enums, mission ids, the event -> hook table, dispatch()."""

from __future__ import annotations

import json
import pickle
import sys
import warnings

import pytest

from mission_widgets import (
    CheckpointError,
    Mission,
    MissionHooks,
    MissionStatus,
    MissionStep,
    MissionValidationError,
    StepStatus,
)
from mission_widgets.core import EVENT_HOOKS, HOOK_SIGNATURES, dispatch, validate_mission_id
from mission_widgets.core.ids import new_mission_id
from mission_widgets.core.mission import MISSION_STATUSES, TERMINAL_STATUSES

# -- statuses ---------------------------------------------------------------------------------


def test_status_enums_have_todays_strings():
    assert [s.value for s in MissionStatus] == list(MISSION_STATUSES)
    assert MISSION_STATUSES == (
        "pending",
        "planning",
        "running",
        "waiting",
        "succeeded",
        "failed",
        "stalled",
        "cancelled",
    )
    assert [s.value for s in StepStatus] == [
        "pending",
        "running",
        "retrying",
        "done",
        "failed",
        "skipped",
    ]
    assert {"succeeded", "failed", "stalled", "cancelled"} == TERMINAL_STATUSES


@pytest.mark.parametrize("status", list(MissionStatus) + list(StepStatus))
def test_a_status_reads_as_its_plain_string_everywhere(status):
    plain = status.value
    assert status == plain and isinstance(status, str)
    assert str(status) == plain
    assert f"{status}" == plain and f"{status:>12}" == f"{plain:>12}"
    assert f"{status}" == plain
    assert json.dumps({"s": status}) == json.dumps({"s": plain})
    restored = pickle.loads(pickle.dumps(status))
    assert restored == plain and type(restored) is str


def test_pandas_shows_plain_strings():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"status": [MissionStatus.RUNNING, MissionStatus.FAILED]})
    assert list(frame["status"].astype(str)) == ["running", "failed"]
    assert (frame["status"] == "failed").tolist() == [False, True]
    assert "MissionStatus" not in frame.to_string()


def test_a_mission_uses_the_enums_and_json_gets_strings(tmp_path):
    mission = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)]).run()
    assert mission.status is MissionStatus.SUCCEEDED
    assert mission.steps[0].status is StepStatus.DONE
    mission.save(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["status"] == "succeeded" and saved["steps"][0]["status"] == "done"
    done = next(e for e in mission.audit_log if e["event"] == "mission_done")
    assert json.loads(json.dumps(done))["status"] == "succeeded"
    assert "status='succeeded'" in repr(mission)


def test_core_imports_no_pandas_or_runtime():
    code = (
        "import sys, mission_widgets.core;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pandas', 'ipywidgets')"
        " or m.startswith('mission_widgets.runtime')]; print(bad)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- mission ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "mission_1", "A.b-c_9", "x" * 128, "a..b"])
def test_valid_ids(value):
    assert validate_mission_id(value) == value
    assert Mission("g", mission_id=value).id == value


@pytest.mark.parametrize(
    "value",
    ["", ".hidden", "..", ".", "../../escaped", "/abs/path", "a/b", "a\\b", "x" * 129, "é", "a b"]
    + ["a\nb", "a\x00b"],
)
def test_invalid_ids_name_the_value(value):
    with pytest.raises(MissionValidationError) as info:
        validate_mission_id(value)
    assert repr(value[:200]) in str(info.value)
    with pytest.raises(MissionValidationError):
        Mission("g", mission_id=value)


@pytest.mark.parametrize("value", [5, None, b"abc", ["a"]])
def test_an_id_must_be_a_string(value):
    with pytest.raises(MissionValidationError, match=repr(value).replace("[", r"\[")):
        validate_mission_id(value)


def test_new_ids_are_valid():
    assert validate_mission_id(new_mission_id())


@pytest.mark.parametrize("bad", [5, "../../escaped", "/etc/passwd", ".x", None])
def test_load_and_resume_refuse_a_bad_id_naming_the_file(tmp_path, bad):
    path = tmp_path / "m.json"
    Mission("g").save(path)
    data = json.loads(path.read_text())
    data["id"] = bad
    path.write_text(json.dumps(data))
    for load in (lambda: Mission.load(path), lambda: Mission("g").resume(path)):
        with pytest.raises(CheckpointError) as info:
            load()
        assert str(path) in str(info.value)
        assert repr(bad) in str(info.value)
    with pytest.raises(CheckpointError, match=repr(bad).replace(".", r"\.")):
        Mission("g").load_state(data, source=str(path))


# -- hooks from events --------------------------------------------------------------------------


def test_every_hook_is_fired_by_an_event_of_the_table():
    hooks_in_table = {hook for pairs in EVENT_HOOKS.values() for hook, _ in pairs}
    assert hooks_in_table == set(HOOK_SIGNATURES)
    assert [h for h, _ in EVENT_HOOKS["mission_done"]] == ["on_mission_end", "on_mission_done"]


def test_each_hook_call_follows_its_event(hook_recorder):
    """Hooks are a sink: each call comes right after its event reached the audit log."""
    seen: list[tuple[str, int]] = []
    mission: Mission

    def executor(task, session, context):
        if not context or "FAILED" not in context:
            raise ConnectionError("flaky")
        return "ok"

    def record(name):
        def hook(*args):
            seen.append((name, len(mission.audit_log)))

        return hook

    hooks = MissionHooks(**{name: record(name) for name in HOOK_SIGNATURES})
    mission = Mission(
        "g", steps=[MissionStep("a", "a", executor=executor)], hooks=hooks, backoff_factor=0
    )
    mission.run()
    for hook_name, n_events in seen:
        event = mission.audit_log[n_events - 1]["event"]
        assert hook_name in [h for h, _ in EVENT_HOOKS[event]], (hook_name, event)
    fired = [name for name, _ in seen]
    for event in mission.audit_log:
        for hook_name, _ in EVENT_HOOKS.get(event["event"], ()):
            assert hook_name in fired


def test_trigger_methods_are_real_methods():
    for name in HOOK_SIGNATURES:
        method = "trigger_" + name.removeprefix("on_")
        assert method in vars(MissionHooks), method


# -- dispatch -----------------------------------------------------------------------------------


def test_dispatch_calls_every_listener_and_warns_for_a_raising_one():
    calls = []

    def good(x):
        calls.append(("good", x))

    def broken(x):
        raise ValueError("boom")

    def after(x):
        calls.append(("after", x))

    with pytest.warns(RuntimeWarning) as record:
        dispatch([good, broken, after], 1, what="subscriber")
    assert calls == [("good", 1), ("after", 1)]
    (warning,) = record
    assert "subscriber" in str(warning.message)
    assert "broken" in str(warning.message)
    assert "ValueError: boom" in str(warning.message)


def test_dispatch_with_names():
    with pytest.warns(RuntimeWarning, match="mission hook on_x raised KeyError"):
        dispatch({"on_x": lambda: {}["k"]}, what="mission hook")


def test_dispatch_lets_base_exceptions_through():
    def stop():
        raise KeyboardInterrupt

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KeyboardInterrupt):
            dispatch([stop])


def test_an_event_sink_that_raises_warns_naming_the_event():
    mission = Mission("g", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)])

    def sink(event):
        if event["event"] == "step_done":
            raise OSError("disk full")

    mission.add_event_sink(sink)
    with pytest.warns(RuntimeWarning, match=r"step_done.*sink.*disk full"):
        mission.run()
    assert mission.status == "succeeded"
