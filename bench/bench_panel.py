"""Panel benchmark (issue 21.7): what the anywidget panel costs, as ratios in one run.

Run from the repository root:

    .venv/bin/python bench/bench_panel.py                 # everything (a few minutes)
    .venv/bin/python bench/bench_panel.py --skip-lesson   # without executing lesson 01

Measured (subject and baseline interleaved, medians of ``--reps``):

* submits     40 ``submit()`` + ``start_queued()`` with the panel shown (its messages JSON
              encoded as a kernel would send them) / the same without a panel (<= 1.3x)
* first draw  ``MissionPanel(orch)`` over stores of 1,000 and 100,000 finished missions
              (1 in 1,000 failed, so rows are pinned) (<= 0.2 s), and its growth per 100x
* one change  cancelling one of 1,000 queued missions: how many messages the panel sends
              (1) and how big it is (bounded by a page, not by the store)
* lesson 01   notebooks/01-quickstart.ipynb executed by nbclient and saved with its widget
              state: its size (<= 100 KB)

The kernel's responsiveness during a 40-mission start (p99 of ``1 + 1``) is
``bench/bench_kernel.py``'s figure.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import build_store

from mission_widgets import Mission, MissionOrchestrator, MissionStep
from mission_widgets.widgets.panel import MissionPanel

REPO = Path(__file__).resolve().parents[1]


def noop(task, session, context):
    return task


class Frontend:
    """Stands in for the browser: every message the panel sends is JSON encoded (what a
    kernel does before it goes on the wire) and counted."""

    def __init__(self, panel: MissionPanel) -> None:
        self.sizes: list[int] = []
        comm = panel.comm
        original = comm.send

        def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
            if isinstance(data, dict) and data.get("method") == "update":
                self.sizes.append(len(json.dumps(data)))
            original(data=data, metadata=metadata, buffers=buffers)

        comm.send = send


def forty_submits(with_panel: bool) -> float:
    with tempfile.TemporaryDirectory() as store:
        orch = MissionOrchestrator(max_concurrent=3, store=store, cancel_grace_secs=1.0)
        panel = None
        if with_panel:
            panel = orch.panel()
            Frontend(panel)
        missions = [
            Mission(f"mission {i}", steps=[MissionStep("s", "x", executor=noop)]) for i in range(40)
        ]
        start = time.perf_counter()
        for mission in missions:
            orch.submit(mission)
        orch.start_queued()
        spent = time.perf_counter() - start
        orch.cancel_all()
        if panel is not None:
            panel.close()
        orch.close()
        return spent


def with_failures(root: Path, every: int) -> None:
    conn = sqlite3.connect(root / "store.sqlite")
    with conn:
        conn.execute(
            "UPDATE missions SET status='failed', error='RuntimeError: boom' "
            f"WHERE rowid % {every} = 0"
        )
        conn.execute(  # the final state says so too (what a mirror is built from)
            "UPDATE mission_states SET state_json = "
            'replace(state_json, \'"status": "succeeded"\', \'"status": "failed"\') '
            "WHERE id IN (SELECT id FROM missions WHERE status = 'failed')"
        )
    conn.close()


def first_draw(n: int, reps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        build_store(root, n)
        with_failures(root, 1000)
        orch = MissionOrchestrator(store=root)
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            panel = MissionPanel(orch, auto_refresh=False)
            times.append(time.perf_counter() - start)
            assert panel.view["pinned"], "failures are pinned"
            panel.close()
        orch.close()
        return statistics.median(times)


def one_change() -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as store:
        orch = MissionOrchestrator(backend="thread", model="demo:fast", store=store)
        for i in range(1000):
            orch.submit(Mission(f"queued {i}"))
        panel = orch.panel(auto_refresh=False)
        panel.show_queued()
        front = Frontend(panel)
        orch.cancel(next(iter(orch.missions)))
        panel.redraw()
        panel.close()
        orch.close()
        return len(front.sizes), max(front.sizes or [0])


def lesson_size() -> int:
    import nbformat
    from nbclient import NotebookClient

    path = REPO / "notebooks" / "01-quickstart.ipynb"
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        NotebookClient(nb, timeout=300, resources={"metadata": {"path": tmp}}).execute()
        out = Path(tmp) / "saved.ipynb"
        nbformat.write(nb, out)
        return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--skip-lesson", action="store_true")
    args = parser.parse_args()

    shown, bare = [], []
    forty_submits(False)  # warm-up: imports, the first worker
    for _ in range(args.reps):
        bare.append(forty_submits(False))
        shown.append(forty_submits(True))
    ratio = statistics.median(shown) / statistics.median(bare)
    print(
        f"40 submits + start_queued: panel {statistics.median(shown):.3f} s, "
        f"none {statistics.median(bare):.3f} s -> {ratio:.2f}x (target <= 1.3x)"
    )
    small, large = first_draw(1_000, args.reps), first_draw(100_000, 3)
    print(
        f"first draw: 1,000 missions {small:.3f} s, 100,000 missions {large:.3f} s "
        f"(growth {large / small:.1f}x per 100x; target <= 0.2 s)"
    )
    count, size = one_change()
    print(f"one row change: {count} message(s), {size:,} bytes (1,000 missions queued)")
    if not args.skip_lesson:
        print(f"lesson 01 saved with widget state: {lesson_size() / 1024:.1f} KB (<= 100 KB)")


if __name__ == "__main__":
    main()
