"""Core behaviour through real backends: a worker process (subprocess) and a kernel thread.

Executors are defined inside each test so cloudpickle sends them by value to the worker.
"""

from __future__ import annotations

import pytest

from mission_widgets import Mission, MissionStep

BACKENDS = ["subprocess", "thread"]


def events_of(orch, mission_id):
    return [e["event"] for e in orch.store.events_for(mission_id)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_executor_on_a_backend(orchestrators, backend):
    async def fetch(task, session, context):
        import asyncio

        await asyncio.sleep(0.01)
        return "async " + task

    orch = orchestrators(2, backend=backend)
    mission = Mission("g", steps=[MissionStep("a", "work", executor=fetch)])
    done = orch.run_async(mission).wait(timeout=60)
    assert done.status == "succeeded"
    assert done.steps[0].result == "async work"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("raised", "name", "text"),
    [
        ("SystemExit(7)", "SystemExit", "SystemExit(7)"),
        ("KeyboardInterrupt()", "KeyboardInterrupt", "KeyboardInterrupt()"),
        ("GeneratorExit()", "GeneratorExit", "GeneratorExit()"),
        ("Custom('boom')", "Custom", "Custom('boom')"),
    ],
)
def test_base_exception_ends_the_mission_failed_once(orchestrators, backend, raised, name, text):
    def explode(task, session, context):
        class Custom(BaseException):
            pass

        raise eval(raised, {"Custom": Custom})

    orch = orchestrators(2, backend=backend)
    mission = Mission(
        "g",
        steps=[
            MissionStep("s1", "explodes", executor=explode),
            MissionStep("s2", "never", executor=lambda t, s, c: "no", depends_on="s1"),
        ],
    )
    done = orch.run_async(mission).wait(timeout=60)
    assert done.status == "failed"
    assert done.error == f"step 's1' raised {text}"
    ends = [e for e in orch.store.events_for(mission.id) if e["event"] == "mission_done"]
    assert len(ends) == 1
    assert ends[0]["error_type"] == name
    assert "never" not in str(done.steps[1].result)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsavable_result_is_kept_as_repr_and_the_mission_succeeds(orchestrators, backend):
    def lock(task, session, context):
        import threading

        return threading.Lock()

    orch = orchestrators(2, backend=backend)
    mission = Mission("g", steps=[MissionStep("a", "lock", executor=lock)])
    with pytest.warns(RuntimeWarning, match="lock") if backend == "thread" else _nothing():
        done = orch.run_async(mission).wait(timeout=60)
    assert done.status == "succeeded"
    assert "lock" in done.steps[0].result and "object" in done.steps[0].result
    success = [e for e in orch.store.events_for(mission.id) if e["event"] == "step_done"]
    assert "cannot be saved" in success[0]["result_note"]
    assert events_of(orch, mission.id).count("mission_done") == 1


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_large_result_in_a_worker_is_stored_once_and_pruned_with_the_mission(orchestrators):
    def big(task, session, context):
        return "z" * (2 * 1024 * 1024)

    orch = orchestrators(1)
    mission = Mission("g", steps=[MissionStep("big", "big", executor=big)])
    done = orch.run_async(mission).wait(timeout=60)
    assert done.status == "succeeded"
    checkpoint = orch.store.checkpoint_file(mission.id)
    large = checkpoint.with_name(f"{mission.id}.large")
    assert [p.stat().st_size > 2 * 1024 * 1024 for p in large.iterdir()] == [True]
    assert checkpoint.stat().st_size < 100_000
    assert len(orch.store.row(mission.id)["state_json"] or "") < 100_000
    assert done.steps[0].result == "z" * (2 * 1024 * 1024)  # the mirror reads it when asked
    assert orch.store.prune(ids=[mission.id]) == [mission.id]
    assert not large.exists() and not checkpoint.exists()
