"""Every mission ends once with its real cause (issue 12.4, core side): BaseExceptions."""

from __future__ import annotations

import threading

import pytest

from mission_widgets import Mission, MissionStep


class Custom(BaseException):
    pass


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (SystemExit(7), "SystemExit(7)"),
        (KeyboardInterrupt(), "KeyboardInterrupt()"),
        (GeneratorExit(), "GeneratorExit()"),
        (Custom("boom"), "Custom('boom')"),
    ],
)
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("timeout", [None, 5.0])
def test_a_base_exception_fails_the_mission_at_once(hook_recorder, error, text, parallel, timeout):
    later = []

    def explode(task, session, context):
        raise error

    steps = [
        MissionStep("s1", "explodes", executor=explode, parallel=parallel, timeout_secs=timeout),
        MissionStep("p", "beside", executor=lambda t, s, c: "p", parallel=parallel),
        MissionStep("s2", "after", executor=lambda t, s, c: later.append(t), depends_on="s1"),
    ]
    result = {}

    def run():  # in a thread of its own: the thread must not die with the exception
        result["mission"] = Mission("g", steps=steps, hooks=hook_recorder.hooks).run()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    mission = result["mission"]
    assert mission.status == "failed"
    assert mission.error == f"step 's1' raised {text}"
    assert later == []  # no retry, nothing after it
    assert len([n for n in hook_recorder.names if n == "on_step_start"]) <= 2
    ends = [e for e in mission.audit_log if e["event"] == "mission_done"]
    assert len(ends) == 1
    assert ends[0]["error_type"] == type(error).__name__
    assert ends[0]["error_message"] == mission.error
    failed = next(e for e in mission.audit_log if e["event"] == "step_failed")
    assert (failed["step_id"], failed["error_type"]) == ("s1", type(error).__name__)
    assert hook_recorder.names[-2:] == ["on_mission_end", "on_mission_done"]
    assert mission.get_step("s1").status == "failed"
