"""run_all(): the sliding concurrency window, a running event loop, Ctrl-C, and a crowd."""

from __future__ import annotations

import _thread
import asyncio
import threading

import pytest
from support.executors import Gated, Touch, echo, noop, touch
from support.runtime import (
    max_overlap,
    one_step,
    peak_running,
    spans,
    wait_for,
    worker_processes,
)
from support.waiting import sigint_raises_keyboard_interrupt


def test_short_missions_start_while_a_long_one_runs(orchestrators, store_dir, tmp_path):
    """Limit 2, one long + four short: the short ones go through the second slot while the
    long one holds the first. With fixed batches the long one would wait forever for them."""
    orch = orchestrators(2)
    marks = [tmp_path / f"short{i}.done" for i in range(4)]
    long = one_step("long", Gated(marks, result="long done", timeout=15), max_retries=0)
    shorts = [one_step(f"short {i}", Touch(marks[i], result=i)) for i in range(4)]
    for mission in [long, *shorts]:
        orch.submit(mission)

    done = orch.run_all()

    assert done == [long, *shorts]
    assert [m.status for m in done] == ["succeeded"] * 5
    assert long.steps[0].result == "long done"
    assert [m.steps[0].result for m in shorts] == [0, 1, 2, 3]
    times = spans(store_dir)
    long_start, long_done = times[long.id]
    for mission in shorts:  # each started (and did its work) while the long one ran
        start, finish = times[mission.id]
        assert start < long_done and start < finish
    assert sum(times[m.id][0] > long_start for m in shorts) >= 3
    assert max_overlap(times[m.id] for m in done) == 2


@pytest.mark.parametrize("limit", [2, 3])
def test_the_window_runs_exactly_max_concurrent_workers_at_once(
    orchestrators, store_dir, tmp_path, limit
):
    """Counted, not timed: every mission holds its worker until the test opens its gate, and
    the test opens one gate at a time only once every started worker is inside its gate. The
    window is full (``limit`` started, the rest queued), refills one for one, and the store's
    events never show more than ``limit`` missions running."""
    orch = orchestrators(limit)
    n = limit + 3
    gates = [tmp_path / f"gate{i}" for i in range(n)]
    inside = [tmp_path / f"inside{i}" for i in range(n)]
    missions = [one_step(f"held {i}", Gated(gates[i], inside[i], result=i)) for i in range(n)]
    index = {m.id: i for i, m in enumerate(missions)}
    for mission in missions:
        orch.submit(mission)

    started = orch.start_queued()
    assert len(started) == len(orch.running) == limit
    assert len(orch.pending_queue) == n - limit
    for released in range(n):
        running = [index[m.id] for m in orch.running]
        assert len(running) == min(limit, n - released), running
        wait_for(lambda r=running: all(inside[i].exists() for i in r), 60, "workers inside")
        assert sum(path.exists() for path in inside) == released + len(running)
        first = min(running)
        touch(gates[first])
        wait_for(lambda m=missions[first]: m not in orch.running, 60, f"mission {first} ends")
        wait_for(lambda r=released: len(orch.running) == min(limit, n - r - 1), 60, "the refill")

    assert [orch.wait(m.id, timeout=60).status for m in missions] == ["succeeded"] * n
    assert peak_running(store_dir) == limit


def test_run_all_inside_a_running_event_loop(orchestrators):
    orch = orchestrators(2)
    missions = [one_step(f"cell {i}", echo) for i in range(3)]
    for mission in missions:
        orch.submit(mission)

    async def notebook_cell():
        assert asyncio.get_running_loop().is_running()
        return orch.run_all()

    done = asyncio.run(notebook_cell())
    assert done == missions
    assert [m.status for m in done] == ["succeeded"] * 3
    assert [m.steps[0].result for m in done] == [f"did: work of cell {i}" for i in range(3)]
    assert orch.running == [] and orch.pending_queue == []


def test_keyboard_interrupt_cancels_what_run_all_started(orchestrators, store_dir, tmp_path):
    orch = orchestrators(2, cancel_grace_secs=1.0)
    never = tmp_path / "never"
    started = [tmp_path / f"started{i}" for i in range(3)]
    missions = [one_step(f"endless {i}", Gated(never, started[i])) for i in range(3)]
    for mission in missions:
        orch.submit(mission)
    problems: list[BaseException] = []

    def interrupt_when_started():
        try:
            wait_for(lambda: started[0].exists() and started[1].exists(), 20, what="2 starts")
        except BaseException as exc:  # reported below; interrupt anyway so run_all ends
            problems.append(exc)
        _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_when_started)
    # interrupt_main() does nothing while SIGINT is ignored (a suite run under nohup).
    with sigint_raises_keyboard_interrupt():
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                orch.run_all()
        finally:
            interrupter.join()
    assert problems == []
    assert [m.status for m in missions] == ["cancelled"] * 3
    assert not started[2].exists()  # the queued one never ran
    assert worker_processes(store_dir) == []
    assert orch.running == [] and orch.pending_queue == []
    rows = orch.status().set_index("id")
    assert all(rows.loc[m.id, "status"] == "cancelled" for m in missions)


@pytest.mark.slow
def test_many_missions_never_exceed_the_limit(orchestrators, store_dir):
    orch = orchestrators(4)
    missions = [one_step(f"no-op {i}", noop) for i in range(200)]
    for mission in missions:
        orch.submit(mission)

    done = orch.run_all()

    assert done == missions
    assert all(m.status == "succeeded" for m in done)
    times = spans(store_dir)
    assert len(times) == len(missions)
    assert all(start is not None and finish is not None for start, finish in times.values())
    peak = max_overlap(times.values())
    assert 2 <= peak <= 4  # the window was used, and never exceeded
    frame = orch.status()
    assert len(frame) == len(missions) and (frame["status"] == "succeeded").all()
    wait_for(lambda: not worker_processes(store_dir), 10, what="every worker to exit")
