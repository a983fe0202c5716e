"""Property: any DAG of steps runs in an order that respects depends_on."""

from __future__ import annotations

import itertools
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from mission_widgets import Mission, MissionStep


@st.composite
def dags(draw):
    """Step specs (id, parallel, depends_on) with edges only to earlier steps: never a cycle."""
    n = draw(st.integers(min_value=1, max_value=9))
    specs = []
    for i in range(n):
        deps = draw(st.sets(st.integers(min_value=0, max_value=i - 1), max_size=3)) if i else set()
        specs.append((f"s{i}", draw(st.booleans()), sorted(f"s{d}" for d in deps)))
    order = draw(st.permutations(range(n)))  # the list order must not matter
    return [specs[i] for i in order]


@settings(max_examples=30, deadline=None, database=None)
@given(dags())
def test_random_dags_respect_dependencies(specs):
    clock = itertools.count()
    lock = threading.Lock()
    started: dict[str, int] = {}
    finished: dict[str, int] = {}
    runs: list[str] = []

    def executor(task, session, context):
        with lock:
            runs.append(task)
            started[task] = next(clock)
        time.sleep(0.001)  # widens the window in which a wrongly started step would show
        with lock:
            finished[task] = next(clock)
        return task

    steps = [
        MissionStep(step_id, step_id, parallel=parallel, depends_on=deps)
        for step_id, parallel, deps in specs
    ]
    mission = Mission("random dag", steps=steps, executor=executor).run()

    assert mission.status == "succeeded", mission.error
    ids = {step_id for step_id, _, _ in specs}
    assert sorted(runs) == sorted(ids)  # every step ran, and exactly once
    assert set(finished) == ids
    for step_id, parallel, deps in specs:
        for dep in deps:
            assert started[step_id] > finished[dep], f"{step_id} started before {dep} finished"
        if not parallel:  # a sequential step runs alone
            for other in ids - {step_id}:
                assert finished[other] < started[step_id] or started[other] > finished[step_id]
    assert mission.progress == 1.0
    assert all(step.status == "done" for step in mission.steps)
