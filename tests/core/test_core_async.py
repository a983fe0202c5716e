"""Async executors and async models: on the package's own event loop.

They work from plain code, from a thread, and from inside a running event loop (a notebook
cell) without nest-asyncio or any patch of asyncio; time limits still stop them.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from mission_widgets import Mission, MissionStep, report_progress
from mission_widgets.core.planning import PLAN_PROMPT_HEADER


async def async_executor(task, session, context):
    await asyncio.sleep(0.01)
    report_progress(0.5, "half way")  # the step's context reaches the coroutine
    return f"async did {task}"


class AsyncModel:
    """A model whose generate is a coroutine function (as async SDK clients are)."""

    def __init__(self):
        self.loops = set()

    async def generate(self, prompt):
        self.loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        if prompt.startswith(PLAN_PROMPT_HEADER):
            return json.dumps([{"id": "a", "description": "do a"}, {"id": "b", "description": "b"}])
        return "async model says hi"


class AsyncRunner:
    """An executor object whose .run is async."""

    async def run(self, task, session=None, model=None):
        await asyncio.sleep(0)
        return "runner " + task.splitlines()[0]


def test_async_executor_runs_and_reports_progress():
    mission = Mission("g", steps=[MissionStep("a", "the task", executor=async_executor)]).run()
    assert mission.status == "succeeded"
    assert mission.steps[0].result == "async did the task"
    progress = [e for e in mission.audit_log if e["event"] == "progress"]
    assert [e["progress"] for e in progress] == [0.5]


def test_async_model_plans_and_executes_and_keeps_one_loop():
    model = AsyncModel()
    mission = Mission("g", model=model).run()
    assert mission.status == "succeeded"
    assert [s.result for s in mission.steps] == ["async model says hi"] * 2
    assert len(model.loops) == 1  # one long-lived loop: async clients can be reused


def test_async_run_method_of_an_executor_object():
    mission = Mission("g", steps=[MissionStep("a", "task", executor=AsyncRunner())]).run()
    assert mission.steps[0].result == "runner task"


def test_mission_run_inside_a_running_event_loop():
    """A notebook cell: Mission.run() is called while this thread's loop runs."""

    async def cell():
        loop = asyncio.get_running_loop()
        mission = Mission(
            "g",
            model=AsyncModel(),
            steps=[
                MissionStep("a", "task", executor=async_executor, parallel=True),
                MissionStep("b", "task b", parallel=True),
            ],
        ).run()
        return mission, loop

    mission, loop = asyncio.run(cell())
    assert mission.status == "succeeded"
    assert mission.steps[0].result == "async did task"
    assert mission.steps[1].result == "async model says hi"
    assert loop.is_closed()


def test_asyncio_is_not_patched():
    Mission("g", steps=[MissionStep("a", "t", executor=async_executor)]).run()
    assert asyncio.run.__module__ == "asyncio.runners"
    assert "nest_asyncio" not in __import__("sys").modules
    assert not hasattr(asyncio, "_nest_patched")


def test_async_step_time_limit_cancels_the_coroutine():
    cancelled = threading.Event()

    async def hangs(task, session, context):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    mission = Mission(
        "g",
        steps=[MissionStep("a", "t", executor=hangs, timeout_secs=0.3, max_retries=0)],
        stall_policy={"on_step_timeout": "abort"},
    ).run()
    assert mission.status == "failed"
    failure = next(e for e in mission.audit_log if e["event"] == "step_failure")
    assert failure["error_type"] == "timeout"
    assert failure["duration_ms"] < 5000
    assert cancelled.wait(5), "the timed-out coroutine was not cancelled"


def test_async_executor_errors_are_retried():
    calls = []

    async def flaky(task, session, context):
        calls.append(context)
        if len(calls) == 1:
            raise ConnectionError("async flake")
        return "ok"

    mission = Mission("g", steps=[MissionStep("a", "t", executor=flaky)], backoff_factor=0).run()
    assert mission.status == "succeeded"
    assert "async flake" in calls[1]


@pytest.mark.parametrize("parallel", [False, True])
def test_async_steps_in_threads_and_parallel(parallel):
    steps = [
        MissionStep(f"s{i}", f"task {i}", executor=async_executor, parallel=parallel)
        for i in range(6)
    ]
    results = {}

    def run():
        results["m"] = Mission("g", steps=steps).run()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert [s.result for s in results["m"].steps] == [f"async did task {i}" for i in range(6)]
