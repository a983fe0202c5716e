"""Decisions by a person from the command line (`mission-widgets decide` / `explain`), the
waiting mission as status() shows it, the timeout fallback, and async executors and models on
the thread and subprocess backends: end to end through the public API and real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from support.cli import run_cli
from support.executors import AsyncModel, Fail, async_echo
from support.faults import FailOnceThenShowContext
from support.runtime import TESTS_DIR, asking, event_names, store_events, wait_for

from mission_widgets import Mission, MissionStep


def waiting_row(orch, mission):
    def row():
        frame = orch.status().set_index("id")
        found = frame.loc[mission.id]
        return found.to_dict() if found["waiting_on"] == "fragile" else None

    return wait_for(row, 30, f"{mission.id} to wait on its step in status()")


@pytest.mark.parametrize("backend", ["subprocess", "thread"])
def test_decide_from_the_command_line(orchestrators, store_dir, tmp_path, backend):
    orch = orchestrators(3, backend=backend)
    skipped, aborted = asking(Fail("flaky")), asking(Fail("broken"))
    for mission in (skipped, aborted):
        orch.run_async(mission)
    for mission in (skipped, aborted):
        row = waiting_row(orch, mission)
        # Waiting is its own status (a person must decide), not a stall; not finished.
        assert row["status"] == "waiting" and row["health"] == "ok"
        assert row["stall_reason"] is None and mission.stall_reason is None
        assert not mission.is_finished

    bad = run_cli(tmp_path, "decide", skipped.id, "maybe", "--store", str(store_dir))
    assert bad.returncode == 2
    assert all(choice in bad.stderr for choice in ("retry", "skip", "abort")), bad.stderr
    assert "Traceback" not in bad.stderr

    done = run_cli(tmp_path, "decide", skipped.id, "skip", "--store", str(store_dir))
    assert done.returncode == 0, done.stderr
    assert "fragile" in done.stdout
    done = run_cli(tmp_path, "decide", aborted.id, "abort", "--store", str(store_dir))
    assert done.returncode == 0, done.stderr

    assert orch.wait(skipped.id, 30).status == "succeeded"
    assert skipped.steps[0].result == "[SKIPPED: user decision]"
    assert skipped.steps[1].status == "done"
    assert orch.wait(aborted.id, 30).status == "failed"
    assert "escalation_skip" in event_names(store_dir, skipped.id)
    assert "escalation_abort" in event_names(store_dir, aborted.id)

    late = run_cli(tmp_path, "decide", skipped.id, "retry", "--store", str(store_dir))
    assert late.returncode == 1 and "not waiting" in late.stderr, late.stderr
    assert "Traceback" not in late.stderr


def test_explain_from_the_command_line_reaches_the_retry(orchestrators, store_dir, tmp_path):
    orch = orchestrators(2)
    shown = tmp_path / "context.txt"
    mission = asking(FailOnceThenShowContext(shown), model="demo")
    orch.run_async(mission)
    waiting_row(orch, mission)

    explained = run_cli(tmp_path, "explain", mission.id, "--store", str(store_dir))
    assert explained.returncode == 0, explained.stderr
    text = explained.stdout.strip()
    assert text
    assert "mission_explained" in event_names(store_dir, mission.id)

    retried = run_cli(tmp_path, "decide", mission.id, "retry", "--store", str(store_dir))
    assert retried.returncode == 0, retried.stderr
    assert orch.wait(mission.id, 30).status == "succeeded"
    context = shown.read_text()
    assert "[AGENT ANALYSIS]" in context
    assert text.splitlines()[0][:40] in context


def test_no_decision_in_time_applies_the_fallback_with_a_reason(orchestrators, store_dir):
    orch = orchestrators(2)
    mission = asking(Fail("nobody answers"), decision_timeout_secs=1.0)
    orch.run_async(mission)
    assert orch.wait(mission.id, 30).status == "failed"
    aborts = [
        e
        for e in store_events(store_dir)
        if e["mission_id"] == mission.id and e["event"] == "escalation_abort"
    ]
    assert len(aborts) == 1 and aborts[0]["payload"]["decided_by"] == "timeout"
    assert "timeout" in (mission.error or "").lower() or "no decision" in (mission.error or "")


@pytest.mark.parametrize("backend", ["subprocess", "thread"])
def test_async_executors_and_async_models_on_every_backend(orchestrators, backend):
    orch = orchestrators(2, backend=backend)
    mission = Mission(
        "async work",
        steps=[
            MissionStep("coroutine", "an async def executor", async_echo),
            MissionStep("by_model", "no executor: the async model does it", None),
        ],
        model=AsyncModel(),
        backoff_factor=0,
    )
    orch.run_async(mission)
    assert orch.wait(mission.id, 60).status == "succeeded", mission.error
    assert mission.steps[0].result == "async did: an async def executor"
    assert "async model answer" in str(mission.steps[1].result)


ASKING_KERNEL = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from mission_widgets import Mission, MissionOrchestrator, MissionStep, StallPolicy
    from support.executors import Fail, echo
    from support.runtime import wait_for

    orch = MissionOrchestrator(2, store=sys.argv[2])
    mission = Mission(
        "asks, then its kernel dies",
        steps=[
            MissionStep("fragile", "may fail", Fail("flaky"), max_retries=0),
            MissionStep("after", "runs after it", echo, depends_on=["fragile"]),
        ],
        stall_policy=StallPolicy(on_max_retries="ask"),
        backoff_factor=0,
    )
    orch.run_async(mission)
    wait_for(lambda: orch.waiting_on(mission.id) == "fragile", 60, "the question")
    print(mission.id, flush=True)
    os._exit(0)  # the kernel dies while its mission waits for a person
    """
)


def test_the_question_survives_a_kernel_restart(orchestrators, store_dir, tmp_path):
    script = tmp_path / "asking_kernel.py"
    script.write_text(ASKING_KERNEL)
    mission_id = subprocess.run(
        [sys.executable, str(script), str(TESTS_DIR), str(store_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=90,
    ).stdout.split()[-1]

    restarted = orchestrators(2)  # the restarted kernel only knows the store
    assert restarted.waiting_on(mission_id) == "fragile"
    frame = restarted.status().set_index("id")
    assert frame.loc[mission_id, "waiting_on"] == "fragile"
    assert restarted.decide(mission_id, "skip") == "fragile"
    mission = restarted.wait(mission_id, 30)
    assert mission.status == "succeeded", mission.error
    names = event_names(store_dir, mission_id)
    assert names.count("escalation_skip") == 1 and names.count("mission_done") == 1


def test_an_orchestrator_s_string_model_reaches_the_mission_as_the_string(orchestrators):
    orch = orchestrators(2, model="demo:fast")
    mission = Mission("needs a model", steps=[MissionStep("ask", "answer it")], backoff_factor=0)
    orch.submit(mission)
    assert type(mission.model) is str and mission.model == "demo:fast"  # not a LazyModel
    done = orch.run_all()
    assert done == [mission] and mission.status == "succeeded", mission.error
    assert type(mission.model) is str and mission.model == "demo:fast"
    assert "demo model" in mission.steps[0].result  # the orchestrator's model did the step
    assert orch.status().set_index("id").loc[mission.id, "model"] == "demo:fast"
