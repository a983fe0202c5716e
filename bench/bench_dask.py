"""Dask backend throughput (issue 8): no-op missions per second on a 2-worker LocalCluster.

Run from the repository root:

    .venv/bin/python bench/bench_dask.py            # full run (about a minute)
    .venv/bin/python bench/bench_dask.py --quick    # smoke run

Each mode runs a batch of one-step no-op missions (the step's executor returns None) from
submit to "every mission finished in the kernel"; batches of all modes are interleaved over
several rounds (A B C D E, A B C D E, ...) so that noise of a shared machine hits every mode
alike, and the median rate is reported, with the ratio that 9 rounds in 10 reach (p90 of
the per-round ratios, each against its own round's baseline) and the 1-minute load average
at start and end. Ratios are against bare ``client.submit`` of the step's executor on the
same cluster:

* ``submit(executor)``   ``client.submit(noop, ...)`` x N, then ``distributed.wait``: the floor
  Dask itself sets (scheduling + a round trip per task);
* ``submit(mission.run)`` ``client.submit`` of a function that unpickles the mission and runs
  it on the worker: the engine on Dask with no events, no kernel mirror;
* ``dask/thread``        ``MissionOrchestrator(backend="dask", isolation="thread")``;
* ``dask/process``       ``MissionOrchestrator(backend="dask")`` (the default isolation: a
  mission process per mission on the worker, killable);
* ``subprocess``         ``MissionOrchestrator(backend="subprocess", max_concurrent=2)``: the
  same parallelism (2) on this machine without Dask.

The Dask orchestrators use ``max_concurrent=4`` (twice the cluster's threads) so the
scheduler always holds a queued mission and a worker never waits for the kernel's next poll.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

import distributed  # noqa: E402

from mission_widgets import Mission, MissionOrchestrator, MissionStep  # noqa: E402
from mission_widgets.runtime.payload import build_payload, dumps_payload  # noqa: E402


def noop(task, session, context):
    """The no-op step (defined in __main__: it travels to workers by value)."""
    return None


def run_bare(payload: bytes) -> str:
    """Run a pickled mission on the worker, as a plain Dask task would."""
    mission = pickle.loads(payload)["mission"]
    mission.run()
    return mission.status


def noop_mission(i: int) -> Mission:
    return Mission(f"no-op {i}", steps=[MissionStep("noop", "do nothing", executor=noop)])


def bench_submit_executor(client, n: int) -> float:
    started = time.perf_counter()
    futures = [client.submit(noop, "do nothing", None, None, pure=False) for _ in range(n)]
    client.gather(futures)
    elapsed = time.perf_counter() - started
    return elapsed


def bench_submit_mission(client, n: int) -> float:
    payloads = [dumps_payload(build_payload(noop_mission(i))) for i in range(n)]
    started = time.perf_counter()
    futures = [client.submit(run_bare, p, pure=False) for p in payloads]
    statuses = client.gather(futures)
    elapsed = time.perf_counter() - started
    assert statuses == ["succeeded"] * n
    return elapsed


def bench_orchestrator(orch: MissionOrchestrator, n: int) -> float:
    missions = [noop_mission(i) for i in range(n)]
    started = time.perf_counter()
    for mission in missions:
        orch.submit(mission)
    orch.run_all()
    elapsed = time.perf_counter() - started
    bad = [m for m in missions if m.status != "succeeded"]
    assert not bad, f"{len(bad)} failed, e.g. {bad[0].error}"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small batches, one round")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    scale = 0.25 if args.quick else 1.0
    sizes = {
        "submit(executor)": int(400 * scale),
        "submit(mission.run)": int(400 * scale),
        "dask/thread": int(160 * scale),
        "dask/process": int(40 * scale),
        "subprocess": int(40 * scale),
    }
    root = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not 8787: may be taken
    )
    client = distributed.Client(cluster, set_as_default=False)
    orchestrators = {
        "dask/thread": MissionOrchestrator(
            4, backend="dask", client=client, store=root / "thread", isolation="thread"
        ),
        "dask/process": MissionOrchestrator(
            4, backend="dask", client=client, store=root / "process", isolation="process"
        ),
        "subprocess": MissionOrchestrator(2, backend="subprocess", store=root / "subprocess"),
    }
    modes: dict[str, Callable[[int], float]] = {
        "submit(executor)": lambda n: bench_submit_executor(client, n),
        "submit(mission.run)": lambda n: bench_submit_mission(client, n),
        **{
            name: (lambda n, o=orch: bench_orchestrator(o, n))
            for name, orch in orchestrators.items()
        },
    }
    rates: dict[str, list[float]] = {name: [] for name in modes}
    load_before = os.getloadavg()[0]
    try:
        for run in modes.values():  # warm-up: imports on workers, worker clients, caches
            run(4)
        for r in range(rounds):
            for name, run in modes.items():
                n = sizes[name]
                rates[name].append(n / run(n))
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    finally:
        for orch in orchestrators.values():
            orch.close()
        client.close()
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)

    base = rates["submit(executor)"]
    print(
        f"\nno-op one-step missions, 2-worker LocalCluster (1 thread each), "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"dask {distributed.__version__}, {rounds} round(s), load average "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"| {'mode':<20} | {'missions':>8} | {'missions/s':>10} | {'vs submit(executor)':>19} "
        f"| {'ratio p90':>9} |"
    )
    print(f"|{'-' * 22}|{'-' * 9}:|{'-' * 11}:|{'-' * 20}:|{'-' * 10}:|")
    for name, values in rates.items():
        rate = statistics.median(values)
        # Per round against that round's baseline (interleaved): the ratio's spread.
        ratios = sorted(v / b for v, b in zip(values, base, strict=True))
        low = ratios[int(0.1 * (len(ratios) - 1))]  # 9 rounds in 10 do at least this well
        print(
            f"| {name:<20} | {sizes[name]:>8} | {rate:>10.1f} "
            f"| {rate / statistics.median(base):>18.3f}x | {low:>8.3f}x |"
        )


if __name__ == "__main__":
    main()
