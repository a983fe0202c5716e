"""Persistence in proportion to the work (issue 15.3): chains of instant sequential steps.

Run from the repository root:

    .venv/bin/python bench/bench_persistence.py            # 200 and 1,000 steps, 3 repeats
    .venv/bin/python bench/bench_persistence.py --repeats 1

For N = 200 and N = 1,000 instant sequential steps, one mission each:

* subject: the mission in a real worker (``python -m mission_widgets.worker`` through
  ``MissionOrchestrator(backend="subprocess")`` on a temporary store): every event goes to
  SQLite with the mission's summary, every finished step to the checkpoint's journal, a
  full checkpoint now and then and at the end. Timed from the worker's ``mission_start`` to
  its ``mission_done`` (store timestamps), so the worker's start-up is left out; the
  wall time from ``run_async`` to ``wait`` is printed too.
* baseline: the same chain run in this process with no persistence (``Mission.run()``, no
  store, no checkpoint), in the same run, repetitions interleaved.

Targets: subject(1,000) / subject(200) <= 5x (linear would be 5x) and subject(1,000) < 2 s.
Results are printed as a Markdown table (copy it into bench/RESULTS.md by hand).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
# Workers import the executor by reference: bench/ reaches them through PYTHONPATH.
sys.path.insert(0, str(BENCH_DIR))
if str(REPO_DIR) not in sys.path:
    sys.path.insert(1, str(REPO_DIR))

import bench_tasks  # noqa: E402

from mission_widgets import Mission, MissionOrchestrator, MissionStep  # noqa: E402

SIZES = (200, 1000)


def chain(n: int) -> Mission:
    steps = [
        MissionStep(
            f"s{i}", f"step {i}", executor=bench_tasks.noop, depends_on=[f"s{i - 1}"] if i else []
        )
        for i in range(n)
    ]
    return Mission(f"chain of {n}", steps=steps, max_steps=n)


def in_worker(orch: MissionOrchestrator, n: int) -> tuple[float, float]:
    """(mission_start -> mission_done in the worker, run_async -> wait) in seconds."""
    mission = chain(n)
    started = time.perf_counter()
    done = orch.run_async(mission).wait(timeout=600)
    wall = time.perf_counter() - started
    if done.status != "succeeded":
        raise SystemExit(f"mission of {n} steps ended {done.status}: {done.error}")
    events = {e["event"]: e["timestamp"] for e in orch.store.events_for(mission.id)}
    return events["mission_done"] - events["mission_start"], wall


def in_process(n: int) -> float:
    mission = chain(n)
    started = time.perf_counter()
    mission.run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    subject: dict[int, list[float]] = {n: [] for n in SIZES}
    walls: dict[int, list[float]] = {n: [] for n in SIZES}
    baseline: dict[int, list[float]] = {n: [] for n in SIZES}
    with tempfile.TemporaryDirectory() as tmp:
        orch = MissionOrchestrator(1, store=Path(tmp) / "store")
        try:
            for repeat in range(args.repeats):
                order = SIZES if repeat % 2 == 0 else SIZES[::-1]  # interleaved
                for n in order:
                    baseline[n].append(in_process(n))
                    worker, wall = in_worker(orch, n)
                    subject[n].append(worker)
                    walls[n].append(wall)
        finally:
            orch.close()
    med = {n: statistics.median(subject[n]) for n in SIZES}
    base = {n: statistics.median(baseline[n]) for n in SIZES}
    wall = {n: statistics.median(walls[n]) for n in SIZES}
    small, large = SIZES
    ratio = med[large] / med[small]
    print(f"Persistence bench, {args.repeats} repeat(s), medians, Python {sys.version.split()[0]}")
    print()
    print(
        "| steps | in a worker (persisted) | run_async -> wait | in process, no persistence "
        "| persisted / none |"
    )
    print("|---|---|---|---|---|")
    for n in SIZES:
        print(
            f"| {n:,} | {med[n]:.3f} s | {wall[n]:.3f} s | {base[n]:.3f} s "
            f"| {med[n] / base[n]:.1f}x |"
        )
    print()
    wall_ratio = wall[large] / wall[small]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print(
        f"- {large:,} / {small:,} steps, run_async -> wait (as the issue timed it): "
        f"{wall_ratio:.2f}x (target <= 5x): {verdict(wall_ratio <= 5.0)}"
    )
    print(
        f"- {large:,} / {small:,} steps, mission_start -> mission_done in the worker: "
        f"{ratio:.2f}x (linear = 5x; target <= 5x): {verdict(ratio <= 5.0)}"
    )
    print(
        f"- {large:,} steps: {wall[large]:.2f} s run_async -> wait, {med[large]:.2f} s in the "
        f"worker (target < 2 s): {verdict(wall[large] < 2.0)}"
    )
    print(f"- baseline (no persistence) {large:,} / {small:,}: {base[large] / base[small]:.2f}x")
    print(
        f"- per step: {med[small] / small * 1000:.2f} ms at {small:,}, "
        f"{med[large] / large * 1000:.2f} ms at {large:,} (flat = linear)"
    )


if __name__ == "__main__":
    main()
