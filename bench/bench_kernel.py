"""Kernel responsiveness while missions run and the panel refreshes (issue 5, "Tests").

Run from the repository root:

    .venv/bin/python bench/bench_kernel.py              # 3 rounds x 40 round trips each
    .venv/bin/python bench/bench_kernel.py --rounds 5 --n 60 --json out.json

A real ipykernel (this interpreter, through a kernelspec in a temporary directory; see
``tests/support/kernel.py``) is driven by nbclient. The figure is the execute round
trip of a trivial cell (``1 + 1``: execute_request -> idle, as nbclient times it), measured

* idle: no mission running, the panel displayed but with nothing to refresh;
* busy: ``--missions`` subprocess missions running, each reporting progress every 0.1 s,
  and the panel auto-refreshing every 0.25 s (its fastest) on its own thread.

Idle and busy blocks alternate (``--rounds`` of each) so that noise from a shared machine
hits both alike. Target (issue 5): busy p99 <= 1.5 x idle p99.

Recorded 2026-11-25 on a shared 2-core container (load average 5-9 from other jobs), 4
missions, p50 / p99 in ms:

    run                 idle p50  idle p99  busy p50  busy p99  p99 ratio
    --rounds 3 --n 40       5.02      7.42      5.73      8.95       1.21
    --rounds 3 --n 40       5.41      8.55      4.02     10.66       1.25
    --rounds 3 --n 40       3.58      7.75      4.39      8.52       1.10
    --rounds 5 --n 60       4.51      7.79      5.10      9.21       1.18
    --rounds 5 --n 60       4.72     14.93      5.03     16.11       1.08
    --rounds 5 --n 60       4.85     15.41      5.89     15.37       1.00

One earlier run at a load spike gave 1.54 (idle p99 11.6, busy p99 17.9): the tail is the
machine's noise, while one refresh tick of the panel (poll + redraw of 4 rows) takes ~1 ms.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR / "tests"))  # the tests' support package

import nbformat  # noqa: E402
from support.kernel import KernelSession, text_output  # noqa: E402

TARGET = 1.5

SETUP = """\
import os, pathlib, time
from mission_widgets import Mission, MissionOrchestrator, MissionStep, report_progress

STORE = {store!r}
get_ipython().displayhook.cache_size = 0  # thousands of `1 + 1`: no Out[] history to flush

def busy_until_released(task, session, context):
    marker = task.rsplit(" ", 1)[-1]
    tick = 0
    while not os.path.exists(marker):
        tick += 1
        report_progress((tick % 100) / 100, f"tick {{tick}}")
        time.sleep(0.1)
    return "released"

orch = MissionOrchestrator(max_concurrent=16, store=STORE)
panel = orch.panel(refresh_interval=0.25)
panel
"""

START = """\
marker = {marker!r}
handles = [
    orch.run_async(Mission(f"bench {{i}}", steps=[
        MissionStep("busy", f"busy until {{marker}}", executor=busy_until_released)]))
    for i in range({missions})
]
"""

RUNNING = (
    "all(r.bar.value > 0 for r in panel.rows if r.mission_id in {h.mission_id for h in handles})"
    " and len(orch.running) == len(handles) and panel.refreshing"
)

RELEASE = """\
pathlib.Path(marker).touch()
[h.wait(timeout=60).status for h in handles]
"""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def round_trips(session: KernelSession, n: int) -> list[float]:
    times = []
    for _ in range(n):
        cell, seconds = session.run_source("1 + 1")
        if text_output(cell) != "2":
            raise RuntimeError(f"unexpected output: {cell.outputs!r}")
        times.append(seconds)
    return times


def wait_for(session: KernelSession, source: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        cell, _ = session.run_source(source)
        if ast.literal_eval(text_output(cell)) is True:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for: {source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=40, help="round trips per block")
    parser.add_argument("--missions", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    idle: list[float] = []
    busy: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench_kernel_") as tmp:
        root = Path(tmp)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(SETUP.format(store=str(root / "store")))]
        session = KernelSession(nb, root, timeout=120)
        try:
            with session.started():
                session.run(0)
                round_trips(session, 10)  # warm-up, not counted
                for r in range(args.rounds):
                    wait_for(session, "not panel.refreshing and not orch.running")
                    idle += round_trips(session, args.n)
                    marker = str(root / f"release-{r}")
                    session.run_source(START.format(marker=marker, missions=args.missions))
                    wait_for(session, RUNNING)
                    busy += round_trips(session, args.n)
                    cell, _ = session.run_source(RELEASE)
                    statuses = ast.literal_eval(text_output(cell))
                    if statuses != ["succeeded"] * args.missions:
                        raise RuntimeError(f"missions ended {statuses}")
                session.run_source("panel.close(); orch.close()")
        finally:
            from mission_widgets import MissionOrchestrator

            leftover = MissionOrchestrator(store=root / "store")
            leftover.cancel_all()
            leftover.close()

    figures = {
        "n_idle": len(idle),
        "n_busy": len(busy),
        "missions": args.missions,
        "idle_p50_ms": 1000 * statistics.median(idle),
        "idle_p99_ms": 1000 * percentile(idle, 99),
        "busy_p50_ms": 1000 * statistics.median(busy),
        "busy_p99_ms": 1000 * percentile(busy, 99),
    }
    figures["p50_ratio"] = figures["busy_p50_ms"] / figures["idle_p50_ms"]
    figures["p99_ratio"] = figures["busy_p99_ms"] / figures["idle_p99_ms"]
    figures["target_p99_ratio"] = TARGET
    figures["meets_target"] = figures["p99_ratio"] <= TARGET

    print(f"execute round trip of `1 + 1` ({len(idle)} idle, {len(busy)} busy samples)")
    print(f"{'':8}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'idle':8}{figures['idle_p50_ms']:10.2f}{figures['idle_p99_ms']:10.2f}")
    print(f"{'busy':8}{figures['busy_p50_ms']:10.2f}{figures['busy_p99_ms']:10.2f}")
    print(f"{'ratio':8}{figures['p50_ratio']:10.2f}{figures['p99_ratio']:10.2f}")
    verdict = "meets" if figures["meets_target"] else "MISSES"
    print(f"busy p99 / idle p99 = {figures['p99_ratio']:.2f} ({verdict} the <= {TARGET}x target)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
