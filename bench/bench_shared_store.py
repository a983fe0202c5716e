"""Three kernels on one store (issue 23.3): throughput against one kernel, status() latency.

Run from the repository root:

    .venv/bin/python bench/bench_shared_store.py              # 3 x 100 missions, 3 rounds
    .venv/bin/python bench/bench_shared_store.py --n 300 --rounds 2

Each "kernel" is a process of its own (``--child``: an orchestrator at ``--limit`` on the
store, warm workers, its missions submitted before the start signal). Two arms, interleaved
(A B, B A, ...) on fresh stores:

* shared: three kernels, ``--n`` no-op missions each, started together on one store;
* single: one kernel running all ``3 x --n`` missions on a store of its own.

Throughput is missions finished per second from the start signal to the last kernel's
``run_all()`` return. While missions run, every kernel calls ``status()`` every 50 ms on a
thread of its own; all those call times give the p50/p99, beside the calling thread's CPU
time per call (what the call works; the rest is waiting for a core or the GIL). Targets:
shared >= 80 % of single; status() p99 <= 0.2 s while they run. The load average is recorded
with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
if str(REPO_DIR) not in sys.path:
    sys.path.insert(1, str(REPO_DIR))

from bench_runtime import median, noop_mission, p90, warm_orchestrator  # noqa: E402


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def child(store: str, n: int, limit: int, start_file: str, out: str) -> None:
    """One kernel: queue n missions, wait for the start signal, run them, sample status()."""
    orch = warm_orchestrator(Path(store), max_concurrent=limit)
    for i in range(n):
        orch.submit(noop_mission(f"shared {os.getpid()} {i}"))
    orch.status()  # pandas imported and the cache built, as in a kernel that has used it
    Path(out + ".ready").touch()
    while not os.path.exists(start_file):
        time.sleep(0.005)
    latencies: list[float] = []
    cpu: list[float] = []  # the sampler thread's own CPU time per call: work, not waiting
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            t, c = time.perf_counter(), time.thread_time()
            orch.status()
            latencies.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)

    sampler = threading.Thread(target=sample, daemon=True)
    t0 = time.time()
    sampler.start()
    done = orch.run_all()
    t1 = time.time()
    stop.set()
    sampler.join()
    bad = [m.id for m in done if m.status != "succeeded"]
    orch.close()
    Path(out).write_text(
        json.dumps(
            {"t0": t0, "t1": t1, "n": len(done), "bad": bad, "status_s": latencies, "cpu_s": cpu}
        )
    )


def run_arm(kernels: int, n_each: int, limit: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="mw-bench-shared-"))
    store, start = root / "store", root / "start"
    outs = [root / f"k{k}.json" for k in range(kernels)]
    load = os.getloadavg()[0]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                str(store),
                str(n_each),
                str(limit),
                str(start),
                str(out),
            ]
        )
        for out in outs
    ]
    deadline = time.monotonic() + 300
    while not all(Path(str(o) + ".ready").exists() for o in outs):
        if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError("a kernel did not get ready")
        time.sleep(0.01)
    start.touch()
    for p in procs:
        p.wait(timeout=900)
    results = [json.loads(o.read_text()) for o in outs]
    shutil.rmtree(root, ignore_errors=True)
    total = sum(r["n"] for r in results)
    bad = [b for r in results for b in r["bad"]]
    assert not bad and total == kernels * n_each, (total, bad[:3])
    wall = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    latencies = [x for r in results for x in r["status_s"]]
    cpu = [x for r in results for x in r["cpu_s"]]
    return {
        "kernels": kernels,
        "missions": total,
        "wall_s": wall,
        "per_s": total / wall,
        "status_p50_s": percentile(latencies, 0.5),
        "status_p99_s": percentile(latencies, 0.99),
        "status_max_s": max(latencies),
        "status_cpu_p50_s": percentile(cpu, 0.5),
        "status_cpu_p99_s": percentile(cpu, 0.99),
        "status_calls": len(latencies),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="missions per kernel")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=5, metavar="X", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        store, n, limit, start, out = args.child
        child(store, int(n), int(limit), start, out)
        return
    shared, single = [], []
    for r in range(args.rounds):
        arms = [("shared", 3, args.n), ("single", 1, 3 * args.n)]
        for name, kernels, n_each in arms if r % 2 == 0 else arms[::-1]:
            result = run_arm(kernels, n_each, args.limit)
            (shared if name == "shared" else single).append(result)
            print(name, json.dumps({k: round(v, 4) for k, v in result.items()}), flush=True)
    ratio = median([s["per_s"] for s in shared]) / median([s["per_s"] for s in single])
    p99 = median([s["status_p99_s"] for s in shared])
    p50 = median([s["status_p50_s"] for s in shared])
    print(
        f"\nshared / single throughput: {ratio:.2f}x (target >= 0.8): shared "
        f"{median([s['per_s'] for s in shared]):.1f}/s (p90 run "
        f"{p90([s['per_s'] for s in shared]):.1f}), single "
        f"{median([s['per_s'] for s in single]):.1f}/s\n"
        f"status() while 3 kernels run: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms "
        "(target <= 200 ms), max "
        f"{max(s['status_max_s'] for s in shared) * 1000:.0f} ms; single kernel p99 "
        f"{median([s['status_p99_s'] for s in single]) * 1000:.0f} ms\n"
        f"status() CPU time of the calling thread (shared): p50 "
        f"{median([s['status_cpu_p50_s'] for s in shared]) * 1000:.1f} ms, p99 "
        f"{median([s['status_cpu_p99_s'] for s in shared]) * 1000:.1f} ms "
        "(the rest of the wall time is waiting for a core or the GIL)\n"
        f"load average per run: {[round(s['load'], 1) for s in shared + single]}"
    )


if __name__ == "__main__":
    main()
