"""Decisions by a person through the orchestrator: status() shows waiting_on,
orch.decide() from this kernel or a restarted one, orch.explain() asks the mission's model,
records the text and hands it to the retry; the question survives a kernel restart."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from support.executors import EchoModel, Fail
from support.faults import FailOnceThenShowContext
from support.runtime import TESTS_DIR, asking, event_names, store_events, wait_for
from support.waiting import wait_until_waiting

from mission_widgets.core.errors import MissionError

RESTARTED_KERNEL = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import MissionOrchestrator

    store, mission_id, action = sys.argv[2:5]
    orch = MissionOrchestrator(2, store=store)  # a new kernel: it only knows the store
    print(orch.status().set_index("id").loc[mission_id, "waiting_on"])
    print(orch.decide(mission_id, action))
    orch.close()
    """
)


def test_waiting_on_and_skip_from_a_restarted_kernel(orchestrators, store_dir, tmp_path):
    orch = orchestrators(2)
    mission = asking(Fail("flaky mirror"))
    handle = orch.run_async(mission)
    assert wait_until_waiting(mission, orch) == "fragile"
    # Nobody polls: the watcher's mirror and the store's table agree.
    wait_for(
        lambda: orch.status().set_index("id").loc[mission.id, "waiting_on"] == "fragile",
        5,
        "status() to show waiting_on",
    )

    script = tmp_path / "restarted.py"
    script.write_text(RESTARTED_KERNEL)
    out = subprocess.run(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir), mission.id, "skip"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert out == ["fragile", "fragile"]  # it saw the question, and answered it

    handle.result(timeout=30)  # succeeded: the steps after it ran
    assert handle.mission is mission
    assert mission.steps[0].result == "[SKIPPED: user decision]"
    assert mission.steps[1].status == "done"
    assert "escalation_skip" in event_names(store_dir, mission.id)
    assert orch.status().set_index("id").loc[mission.id, "waiting_on"] is None
    with pytest.raises(MissionError, match="not waiting"):
        orch.decide(mission.id, "retry")


def test_abort_fails_the_mission(orchestrators):
    orch = orchestrators(2)
    mission = asking(Fail("broken"))
    orch.run_async(mission)
    assert wait_until_waiting(mission, orch) == "fragile"
    assert orch.decide(mission.id, "abort") == "fragile"
    assert orch.wait(mission.id, 30).status == "failed"
    assert "escalation_abort" in [e["event"] for e in mission.audit_log]


def test_explain_asks_the_model_and_the_retry_gets_the_analysis(orchestrators, store_dir, tmp_path):
    orch = orchestrators(2)
    shown = tmp_path / "context.txt"
    mission = asking(FailOnceThenShowContext(shown), model=EchoModel())
    orch.run_async(mission)
    assert wait_until_waiting(mission, orch) == "fragile"

    text = orch.explain(mission.id)

    assert text == "model answer"
    explained = [
        e["payload"]
        for e in store_events(store_dir)
        if e["mission_id"] == mission.id and e["event"] == "mission_explained"
    ]
    assert [(e["step_id"], e["explanation"]) for e in explained] == [("fragile", "model answer")]
    orch.decide(mission.id, "retry")
    assert orch.wait(mission.id, 30).status == "succeeded"
    assert "[AGENT ANALYSIS] model answer" in shown.read_text()
    assert json.loads(json.dumps(mission.steps[0].result)) == "fixed"


def test_the_demo_model_explains_the_failing_step_and_its_error(orchestrators):
    orch = orchestrators(2)
    mission = asking(Fail("the export service is down"), model="demo:fast")
    orch.run_async(mission)
    wait_until_waiting(mission, orch)
    text = orch.explain(mission.id)
    assert text.startswith("[simulated by the offline demo model]"), text
    assert "step 'fragile'" in text and "RuntimeError: the export service is down" in text
    assert "Root cause" in text and "What a retry would change" in text and "Skip" in text
    orch.decide(mission.id, "abort")
    assert orch.wait(mission.id, 30).status == "failed"
