"""Kernel responsiveness during a 40-mission start with the panel shown (issue 21, item 7;
first written for issue 5).

Run from the repository root:

    .venv/bin/python bench/bench_kernel.py                 # 5 rounds x 60 round trips a block
    .venv/bin/python bench/bench_kernel.py --rounds 3 --n 40 --json out.json

A real ipykernel (this interpreter, through a kernelspec in a temporary directory; see
``tests/support/kernel.py``) is driven by nbclient, which receives the panel's widget
messages as a front end would. The figure is the execute round trip of a trivial cell
(``1 + 1``: execute_request -> idle, as nbclient times it), measured in three kinds of block:

* idle: nothing runs; the panel (the anywidget ``MissionPanel``) is displayed;
* panel: right after a cell that ``submit()``s ``--missions`` subprocess missions and calls
  ``start_queued()`` on the orchestrator whose panel is displayed (the missions start
  while the round trips run: workers spawn, events arrive, the panel redraws);
* bare: the same start on a second orchestrator (its own store) with no panel, to tell
  what the panel adds from what the workers' start costs the machine.

Blocks are interleaved (the two start blocks swap places every round) so that noise from a
shared machine hits all alike; the 1-minute load average is recorded at each block.
Target (issue 21): panel p99 <= 1.5 x idle p99. Recorded figures (six runs on a 2-core
machine at load average 17-27: median 1.45x, three of six over 1.5x, the same start without
a panel as slow): bench/RESULTS-panel.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR / "tests"))  # the tests' support package

import nbformat  # noqa: E402
from support.kernel import KernelSession, text_output  # noqa: E402

TARGET = 1.5

SETUP = """\
import os, pathlib, time
from mission_widgets import Mission, MissionOrchestrator, MissionStep, report_progress

get_ipython().displayhook.cache_size = 0  # thousands of `1 + 1`: no Out[] history to flush

def wait_for_marker(task, session, context):
    report_progress(0.5, "started")
    marker = task.rsplit(" ", 1)[-1]
    while not os.path.exists(marker):
        time.sleep(0.05)
    return "released"

orchs = {{
    "panel": MissionOrchestrator(max_concurrent={window}, store={panel_store!r}),
    "bare": MissionOrchestrator(max_concurrent={window}, store={bare_store!r}),
}}
panel = orchs["panel"].panel(refresh_interval=0.25)
panel
"""

START = """\
target, marker = orchs[{kind!r}], {marker!r}
missions = [Mission(f"bench {{i}}", steps=[MissionStep("wait", f"wait for {{marker}}",
                                                       executor=wait_for_marker)])
            for i in range({missions})]
for mission in missions:
    target.submit(mission)
target.start_queued()
"""

STARTED = "sum(1 for m in target.running if m.status == 'running')"

RELEASE = """\
pathlib.Path(marker).touch()
ended = [str(target.wait(m.id, timeout=120).status) for m in missions]
target.clear_finished()
ended
"""

IDLE = "not any(o.running or o.pending_queue for o in orchs.values())"


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


def block(session: KernelSession, n: int) -> tuple[list[float], float]:
    """``n`` round trips, and the 1-minute load average when they began."""
    load = os.getloadavg()[0]
    return round_trips(session, n), load


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": 1000 * statistics.median(values),
        "p90_ms": 1000 * percentile(values, 90),
        "p99_ms": 1000 * percentile(values, 99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=60, help="round trips per block")
    parser.add_argument("--missions", type=int, default=40)
    parser.add_argument("--window", type=int, default=40, help="max_concurrent")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    samples: dict[str, list[float]] = {"idle": [], "panel": [], "bare": []}
    loads: dict[str, list[float]] = {"idle": [], "panel": [], "bare": []}
    started: dict[str, list[int]] = {"panel": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="bench_kernel_") as tmp:
        root = Path(tmp)
        stores = {"panel": root / "store-panel", "bare": root / "store-bare"}
        nb = nbformat.v4.new_notebook()
        setup = SETUP.format(
            window=args.window, panel_store=str(stores["panel"]), bare_store=str(stores["bare"])
        )
        nb.cells = [nbformat.v4.new_code_cell(setup)]
        session = KernelSession(nb, root, timeout=300)
        try:
            with session.started():
                session.run(0)
                round_trips(session, 10)  # warm-up, not counted
                for r in range(args.rounds):
                    wait_for(session, IDLE)
                    times, load = block(session, args.n)
                    samples["idle"] += times
                    loads["idle"].append(load)
                    for kind in ("panel", "bare") if r % 2 == 0 else ("bare", "panel"):
                        marker = str(root / f"release-{kind}-{r}")
                        start = START.format(kind=kind, marker=marker, missions=args.missions)
                        session.run_source(start)
                        times, load = block(session, args.n)
                        samples[kind] += times
                        loads[kind].append(load)
                        cell, _ = session.run_source(STARTED)
                        started[kind].append(int(text_output(cell)))
                        cell, _ = session.run_source(RELEASE)
                        statuses = ast.literal_eval(text_output(cell))
                        if statuses != ["succeeded"] * args.missions:
                            raise RuntimeError(f"missions ended {statuses}")
                session.run_source("panel.close(); [o.close() for o in orchs.values()]")
        finally:
            from mission_widgets import MissionOrchestrator

            for store in stores.values():
                leftover = MissionOrchestrator(store=store)
                leftover.cancel_all()
                leftover.close()

    figures: dict[str, Any] = {
        "rounds": args.rounds,
        "n_per_block": args.n,
        "missions": args.missions,
        "window": args.window,
        "cpus": os.cpu_count(),
    }
    for kind, values in samples.items():
        figures[kind] = {
            **summary(values),
            "n": len(values),
            "load_1min": [round(x, 2) for x in loads[kind]],
        }
    for kind in ("panel", "bare"):
        figures[kind]["running_after_block"] = started[kind]
    idle, shown, bare = (figures[k] for k in ("idle", "panel", "bare"))
    ratio = shown["p99_ms"] / idle["p99_ms"]
    figures["p99_ratio_panel_to_idle"] = ratio
    figures["p99_ratio_bare_to_idle"] = bare["p99_ms"] / idle["p99_ms"]
    figures["p99_ratio_panel_to_bare"] = shown["p99_ms"] / bare["p99_ms"]
    figures["target_p99_ratio"] = TARGET
    figures["meets_target"] = ratio <= TARGET

    print(f"execute round trip of `1 + 1` during a {args.missions}-mission start")
    print(f"{'':8}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}  load (1 min) per block")
    for kind in ("idle", "panel", "bare"):
        row = figures[kind]
        print(
            f"{kind:8}{row['p50_ms']:10.2f}{row['p90_ms']:10.2f}{row['p99_ms']:10.2f}"
            f"  {row['load_1min']}"
        )
    print(f"running when a start block ended: panel {started['panel']}, bare {started['bare']}")
    verdict = "meets" if figures["meets_target"] else "MISSES"
    print(
        f"panel p99 / idle p99 = {ratio:.2f} ({verdict} the <= {TARGET}x target); "
        f"bare / idle = {figures['p99_ratio_bare_to_idle']:.2f}; "
        f"panel / bare = {figures['p99_ratio_panel_to_bare']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
