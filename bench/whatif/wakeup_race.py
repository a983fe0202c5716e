"""What-if: the lost wake-up in MissionOrchestrator._wait_until, and a generation counter.

    .venv/bin/python bench/whatif/wakeup_race.py [N_MISSIONS] [REPS]

``_wait_until`` polls, then waits on ``_wakeup`` for up to POLL_INTERVAL; a worker that
exits between the end of the poll and the start of the wait notifies nobody, so its slot
stays empty for the whole interval (0.2 s). The fixed variant (patched on the instance
only) bumps a counter in ``_wake`` and skips the wait when it moved since the poll began.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_runtime as br

import mission_widgets.orchestrator as mo


def fixed_wait_until(self, done, timeout):
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with self._wakeup:
            generation = self._generation
        self.poll_async()
        if done():
            return True
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        with self._wakeup:
            if self._generation == generation:  # nothing happened since the poll began
                self._wakeup.wait(
                    mo.POLL_INTERVAL if remaining is None else min(mo.POLL_INTERVAL, remaining)
                )


def fixed_wake(self):
    with self._wakeup:
        self._generation += 1
        self._wakeup.notify_all()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    limit = 4
    br.configure_bytecode(False)
    br.warm_up()

    def run(fixed: bool):
        root = br.tmp_store("race")
        orch = br.MissionOrchestrator(max_concurrent=limit, store=root)
        if fixed:
            orch._generation = 0
            orch._wake = types.MethodType(fixed_wake, orch)
            orch._wait_until = types.MethodType(fixed_wait_until, orch)
        log = br.LaunchLog(orch)
        missions = [br.noop_mission(f"m{i}") for i in range(n)]
        t0 = time.perf_counter()
        for m in missions:
            orch.submit(m)
        orch.run_all()
        dt = time.perf_counter() - t0
        assert all(m.status == "succeeded" for m in missions)
        gaps = log.refill_gaps(limit)
        orch.close()
        shutil.rmtree(root, ignore_errors=True)
        return n / dt, gaps

    stock, fixed = br.interleaved([lambda: run(False), lambda: run(True)], reps, warmup=0)
    for name, runs in (("stock _wait_until", stock), ("generation counter", fixed)):
        gaps = [g for _, gs in runs for g in gs]
        print(
            f"{name:<20} {statistics.median(r for r, _ in runs):5.1f} missions/s; refill gap "
            f"median {statistics.median(gaps) * 1000:.0f} ms, p90 {br.p90(gaps) * 1000:.0f} ms; "
            f"over 100 ms: {sum(g > 0.1 for g in gaps)}/{len(gaps)}, "
            f"over 180 ms: {sum(g > 0.18 for g in gaps)}"
        )


if __name__ == "__main__":
    main()
