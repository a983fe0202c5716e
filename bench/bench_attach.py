"""Attach and status() at scale (issue 15.5): 1,000 to 100,000 missions.

    .venv/bin/python bench/bench_attach.py [--max 100000]

For each size a store is built quickly (bulk rows, as bench_runtime's P4 does) once with
finished missions and once with queued missions of a live owner (this process), then:

* attach: ``MissionOrchestrator(store=...)`` (target <= 0.5 s at 100,000);
* status(): median of 5 calls / median of 5 ``pandas.DataFrame`` of the same rows
  (target <= 2x), interleaved.

Prints a Markdown table; ratios, not timed assertions.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(BENCH_DIR.parent))

import pandas as pd  # noqa: E402
from bench_runtime import _p4_rows  # noqa: E402

from mission_widgets import MissionOrchestrator  # noqa: E402
from mission_widgets.runtime.processes import owner_token  # noqa: E402
from mission_widgets.runtime.store import STATUS_COLUMNS, MissionStore  # noqa: E402


def build(root: str, n: int, queued: bool) -> list[dict]:
    """A store of ``n`` finished (8 succeeded : 1 failed : 1 cancelled) or queued missions."""
    store = MissionStore(root)
    rows = _p4_rows(n)
    statuses = ("pending",) if queued else ("succeeded",) * 8 + ("failed", "cancelled")
    for i, row in enumerate(rows):
        row["status"] = statuses[i % len(statuses)]
        if queued:
            row.update(started_at=None, finished_at=None, pid=None)
        elif row["finished_at"] is None:
            row["finished_at"] = row["started_at"] + 1.5
    owner = owner_token()  # alive: a queue is left to its owner, not adopted
    columns = [*STATUS_COLUMNS, "owner", "pid_started"]
    with sqlite3.connect(store.db_path) as conn:
        conn.executemany(
            f"INSERT INTO missions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [[r.get(c) for c in STATUS_COLUMNS] + [owner, r["started_at"]] for r in rows],
        )
    store.close()
    return rows


def measure(n: int, queued: bool) -> dict:
    root = tempfile.mkdtemp(prefix="mw-attach-")
    try:
        rows = build(root + "/store", n, queued)
        began = time.perf_counter()
        orch = MissionOrchestrator(store=root + "/store")
        attach = time.perf_counter() - began
        orch.status()  # warm: the first call builds the cached parts
        dicts = [dict(r) for r in rows]
        status, frame = [], []
        for _ in range(5):
            t = time.perf_counter()
            orch.status()
            status.append(time.perf_counter() - t)
            t = time.perf_counter()
            pd.DataFrame(dicts)
            frame.append(time.perf_counter() - t)
        orch.close()
        return {
            "n": n,
            "kind": "queued" if queued else "finished",
            "attach_s": attach,
            "status_ms": statistics.median(status) * 1000,
            "frame_ms": statistics.median(frame) * 1000,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=100_000, help="largest store (default 100000)")
    args = parser.parse_args()
    sizes = [n for n in (1_000, 10_000, 100_000) if n <= args.max]
    print("| missions | kind | attach | status() | DataFrame | ratio |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        for queued in (False, True):
            r = measure(n, queued)
            print(
                f"| {n:,} | {r['kind']} | {r['attach_s']:.2f} s | {r['status_ms']:.1f} ms | "
                f"{r['frame_ms']:.1f} ms | {r['status_ms'] / r['frame_ms']:.2f}x |"
            )


if __name__ == "__main__":
    main()
