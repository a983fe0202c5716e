"""What a mission says while it runs and what it produced, seen from the kernel: the last
progress message and a preview of the result in ``status()``, ``handle.result()`` as the
mission's result value, ``handle.mission`` as the Mission (real subprocess workers)."""

from __future__ import annotations

import pandas as pd
from support.executors import ProgressThenGate, echo
from support.runtime import one_step
from support.waiting import wait_for

from mission_widgets import Mission, MissionStep


def long_answer(task, session, context):
    return {"answer": 42, "text": "x" * 5000}


def test_status_shows_the_last_progress_message_then_the_result(orchestrators, tmp_path):
    orch = orchestrators(2)
    gate = tmp_path / "gate"
    handle = orch.run_async(one_step("talks", ProgressThenGate(gate)))

    def message() -> object:
        return orch.status().set_index("id").loc[handle.mission_id, "message"]

    wait_for(lambda: message() == "half way", 30, "the progress message in status()")
    orch.poll_async()
    assert handle.mission.message == "half way"  # the kernel's mirror says it too
    gate.touch()
    value = handle.result(timeout=30)
    assert value == handle.mission.result == handle.mission.steps[0].result
    row = orch.status().set_index("id").loc[handle.mission_id]
    assert row["result_summary"] == str(value)  # short, under 1 MiB: shown, not empty
    assert row["message"] == "half way"  # the last message it gave


def test_the_result_is_the_marked_step_or_the_last_one_and_its_preview_is_short(
    orchestrators,
):
    orch = orchestrators(2)
    marked = Mission(
        "marked",
        steps=[
            MissionStep("answer", "compute", long_answer),
            MissionStep("tidy", "tidy up", echo, depends_on=["answer"]),
        ],
        result_step="answer",
    )
    last = Mission("last", steps=[MissionStep("a", "a", long_answer), MissionStep("b", "b", echo)])
    handles = [orch.run_async(m) for m in (marked, last)]
    assert handles[0].result(timeout=30) == {"answer": 42, "text": "x" * 5000}
    assert handles[1].result(timeout=30) == last.steps[1].result
    assert handles[0].mission is marked and handles[1].mission is last
    frame = orch.status().set_index("id")
    preview = frame.loc[marked.id, "result_summary"]
    assert preview.startswith("{'answer': 42, 'text': 'xxx") and len(preview) <= 210
    assert frame.loc[last.id, "result_summary"] == str(last.result)
    assert pd.isna(frame.loc[marked.id, "message"])  # it never reported progress
