"""``mission-widgets decide`` / ``explain``: a person answers a mission that asks, from a
terminal (another process than the kernel that submitted it)."""

from __future__ import annotations

import pytest
from support.cli import wait_for
from support.executors import Fail

from mission_widgets import Mission, MissionStep, StallPolicy


@pytest.fixture
def asking(orchestrators, tmp_path):
    """A mission in a worker that waits for a person on its failed step ``export``."""
    orch = orchestrators(store=tmp_path / "ask", model="demo:fast")
    mission = Mission(
        "Export the figures",
        steps=[
            MissionStep(
                "export", "Export to the drive", executor=Fail("drive is down"), max_retries=0
            ),
            MissionStep("notify", "Tell the team", depends_on=["export"]),
        ],
        stall_policy=StallPolicy(on_max_retries="ask", decision_timeout_secs=120),
    )
    orch.run_async(mission)
    wait_for(lambda: orch.waiting_on(mission.id) == "export", 60, "the mission to ask")
    return orch, mission


def test_explain_then_skip_from_the_command_line(run_cli, asking):
    orch, mission = asking
    explained = run_cli("explain", mission.id[-8:], "--store", orch.store.root)
    assert explained.returncode == 0, explained.stdout + explained.stderr
    assert explained.stdout.strip()
    events = [e["event"] for e in orch.store.events_for(mission.id)]
    assert "mission_explained" in events

    done = run_cli("decide", mission.id, "skip", "--store", orch.store.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Decided 'skip' for step 'export' of mission {mission.id}" in done.stdout
    ended = orch.wait(mission.id, timeout=60)
    assert ended.status == "succeeded"
    assert ended.step_summary() == {"export": "skipped", "notify": "done"}
    assert "[SKIPPED: user decision]" in str(ended.steps[0].result)

    again = run_cli("decide", mission.id, "retry", "--store", orch.store.root)
    assert again.returncode == 1
    assert "not waiting for a decision" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_abort_from_the_command_line(run_cli, asking):
    orch, mission = asking
    done = run_cli("decide", mission.id, "abort", "--store", orch.store.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert orch.wait(mission.id, timeout=60).status == "failed"


def test_an_unknown_action_is_a_usage_error_listing_the_choices(run_cli, tmp_path):
    done = run_cli("decide", "abc", "frobnicate", "--store", tmp_path)
    assert done.returncode == 2
    assert "choose from 'retry', 'skip', 'abort'" in done.stderr
