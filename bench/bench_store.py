"""Store scale benchmarks (issue 15.5): what a store of 1,000 / 10,000 / 100,000 missions costs.

Run from the repository root:

    .venv/bin/python bench/bench_store.py              # 1k, 10k, 100k (a few minutes)
    .venv/bin/python bench/bench_store.py --sizes 1000 10000 --reps 3

Each store is built fast by :func:`build_store` (``executemany`` of rows and events, as the
real writes would leave them: finished missions with a final state and six events each,
plus queued ones). Measured, with subject and baseline interleaved in the same run:

* attach      ``MissionOrchestrator(store=...)`` construction (target <= 0.5 s at 100k)
* status()    ``orch.status()`` / ``pandas.DataFrame`` of the same rows as dicts (<= 2x),
              on a store of finished missions and on one of queued missions
* panel       ``MissionPanel(orch)`` + its first ``redraw()`` (<= 0.2 s)
* CLI         ``mission-widgets status --store ...`` wall time (<= 1 s), beside a bare
              ``python -c "import mission_widgets.cli"``
* store       the store's own reads: ``status_records()`` (all rows), the unfinished rows
              only, ``finished_signature()`` and ``max_seq()``

and each figure's growth from one size to the next (1.0 per 10x = constant, 10 = linear).
Results go to ``bench/results/store-latest.{json,md}``; ``bench/RESULTS-store.md`` holds a
recorded run with what limits the next order of magnitude.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))
if str(REPO_DIR) not in sys.path:
    sys.path.insert(1, str(REPO_DIR))

from bench_runtime import interleaved, median, p90  # noqa: E402

from mission_widgets.core.events import make_event  # noqa: E402
from mission_widgets.runtime.processes import owner_token  # noqa: E402
from mission_widgets.runtime.store import STATUS_COLUMNS, MissionStore  # noqa: E402

EVENTS = (
    "mission_start",
    "planner_done",
    "step_start",
    "step_success",
    "step_done",
    "mission_done",
)


def _final_state(mission_id: str, goal: str) -> str:
    """A final state of the size a three-step mission leaves (~1.5 KB)."""
    steps = [
        {
            "id": f"s{k}",
            "description": f"step {k} of {goal}",
            "status": "done",
            "retry_count": 0,
            "result": "a result of a few words " * 4,
            "error_history": [],
            "depends_on": [f"s{k - 1}"] if k else [],
        }
        for k in range(3)
    ]
    return json.dumps({"id": mission_id, "goal": goal, "status": "succeeded", "steps": steps})


def build_store(root: Path, n: int, *, queued: bool = False, live_owner: str | None = None) -> None:
    """A store of ``n`` missions written in bulk: finished ones (each with six events and a
    final state) or, with ``queued``, missions queued by ``live_owner`` (a live orchestrator,
    so attaching does not adopt them)."""
    store = MissionStore(root)
    store.close()
    now = time.time() - n
    columns = [*STATUS_COLUMNS, "owner"]
    rows, events, states = [], [], []
    for i in range(n):
        mission_id = f"mission_{i:07d}"
        goal = f"summarise report {i} for the weekly review"
        submitted = now + i
        row = dict.fromkeys(columns)
        row.update(id=mission_id, goal=goal, submitted_at=submitted, backend="subprocess")
        row.update(prompt_tokens=0, completion_tokens=0, model="demo")
        if queued:
            row.update(status="pending", n_steps=3, n_done=0, n_failed=0, progress=0.0)
            row["owner"] = live_owner
        else:
            row.update(status="succeeded", n_steps=3, n_done=3, n_failed=0, progress=1.0)
            row.update(started_at=submitted + 0.1, finished_at=submitted + 0.9, pid=10_000 + i)
            row.update(last_heartbeat=submitted + 0.8, last_activity=submitted + 0.9)
            states.append((mission_id, _final_state(mission_id, goal)))
            for k, name in enumerate(EVENTS):
                event = {
                    "event": name,
                    "timestamp": submitted + 0.1 + k * 0.15,
                    "mission_id": mission_id,
                    "step_id": "s0" if name.startswith("step") else None,
                    "status": "succeeded" if name == "mission_done" else None,
                }
                events.append((mission_id, name, event["timestamp"], json.dumps(event)))
        rows.append([row[c] for c in columns])
    conn = sqlite3.connect(root / "store.sqlite")
    with conn:
        conn.executemany(
            f"INSERT INTO missions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            rows,
        )
        conn.executemany(
            "INSERT INTO events (mission_id, event, timestamp, payload) VALUES (?, ?, ?, ?)",
            events,
        )
        conn.executemany("INSERT INTO mission_states (id, state_json) VALUES (?, ?)", states)
    conn.close()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(n: int, reps: int, *, queued: bool) -> dict[str, Any]:
    import pandas as pd

    from mission_widgets import MissionOrchestrator, MissionPanel

    root = Path(tempfile.mkdtemp(prefix=f"mw-bench-store-{n}-"))
    t0 = time.perf_counter()
    build_store(root, n, queued=queued, live_owner=owner_token())
    result: dict[str, Any] = {"n": n, "kind": "queued" if queued else "finished"}
    result["build_s"] = time.perf_counter() - t0
    result["db_mib"] = (root / "store.sqlite").stat().st_size / 2**20

    attach = []
    for _ in range(max(1, reps // 2)):
        t = time.perf_counter()
        orch = MissionOrchestrator(store=root)
        attach.append(time.perf_counter() - t)
        orch.close()
    result["attach_s"] = median(attach)

    orch = MissionOrchestrator(store=root)
    store = orch.store
    names, records = store.status_records()
    dicts = [dict(zip(names[1:], r[1:])) for r in records]
    status, frame = interleaved(
        [lambda: timed(orch.status), lambda: timed(lambda: pd.DataFrame(dicts))], reps, warmup=1
    )
    result["status_s"], result["dataframe_s"] = median(status), median(frame)
    result["status_ratio"] = result["status_s"] / result["dataframe_s"]

    counter = itertools.count()

    def status_after_a_change() -> float:
        # Right after a mission finished: one row written by the store's own calls (as a
        # worker writes it), then status() -- it reads that row and patches its cache.
        mission_id = f"late_{next(counter):05d}"
        store.register(mission_id, "one more", backend="subprocess", owner=None)
        store.append_event(make_event("mission_start", mission_id), {"status": "running"})
        store.finish_if_unfinished(mission_id, "succeeded", None)
        return timed(orch.status)

    cold, frame2 = interleaved(
        [status_after_a_change, lambda: timed(lambda: pd.DataFrame(dicts))], reps, warmup=1
    )
    result["status_cold_s"], result["status_cold_p90_s"] = median(cold), p90(cold)
    result["status_cold_ratio"] = result["status_cold_s"] / median(frame2)
    result["status_records_s"] = median([timed(store.status_records) for _ in range(reps)])
    result["unfinished_s"] = median(
        [timed(lambda: store.status_records(finished=False)) for _ in range(reps)]
    )
    result["signature_s"] = median([timed(store.change_versions) for _ in range(reps)])
    result["max_seq_s"] = median([timed(store.max_seq) for _ in range(reps)])

    def first_draw() -> None:
        panel = MissionPanel(orch, auto_refresh=False)
        panel.redraw()
        panel.close()

    result["panel_s"] = median([timed(first_draw) for _ in range(max(1, reps // 2))])
    orch.close()

    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO_DIR), os.environ.get("PYTHONPATH", "")])
    )
    cli = [sys.executable, "-m", "mission_widgets", "status", "--store", str(root)]
    bare = [sys.executable, "-c", "import mission_widgets.cli"]

    def run(cmd) -> float:
        t = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        return time.perf_counter() - t

    cli_s, bare_s = interleaved([lambda: run(cli), lambda: run(bare)], max(1, reps // 2))
    result["cli_s"], result["cli_import_s"] = median(cli_s), median(bare_s)
    shutil.rmtree(root, ignore_errors=True)
    return result


def warm_up() -> None:
    """Import everything once and attach to a tiny store, so the first size measured does
    not pay the imports (pandas, ipywidgets) that a kernel has paid already."""
    from mission_widgets import MissionOrchestrator, MissionPanel

    root = Path(tempfile.mkdtemp(prefix="mw-bench-store-warm-"))
    build_store(root, 10)
    orch = MissionOrchestrator(store=root)
    orch.status()
    MissionPanel(orch, auto_refresh=False).close()
    orch.close()
    shutil.rmtree(root, ignore_errors=True)


FIGURES = [
    ("attach_s", "attach: MissionOrchestrator(store=...)", "<= 0.5 s at 100k"),
    ("status_s", "status()", ""),
    ("dataframe_s", "pandas.DataFrame of the same rows", ""),
    ("status_ratio", "status() / DataFrame (ratio)", "<= 2x"),
    ("status_cold_s", "status() right after a mission finished", ""),
    ("status_cold_p90_s", "  same, p90", ""),
    ("status_cold_ratio", "  same / DataFrame (ratio)", "<= 2x"),
    ("panel_s", "panel first draw (MissionPanel + redraw)", "<= 0.2 s"),
    ("cli_s", "`mission-widgets status`", "<= 1 s"),
    ("cli_import_s", "  beside: python -c 'import mission_widgets.cli'", ""),
    ("status_records_s", "store.status_records() (all rows)", ""),
    ("unfinished_s", "store.status_records(finished=False)", ""),
    ("signature_s", "store.change_versions()", ""),
    ("max_seq_s", "store.max_seq()", ""),
    ("build_s", "build the store (bench helper, executemany)", ""),
    ("db_mib", "store.sqlite size (MiB)", ""),
]


def fmt(key: str, value: float) -> str:
    if key.endswith("_ratio"):
        return f"{value:.2f}x"
    if key == "db_mib":
        return f"{value:.1f}"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def table(results: list[dict[str, Any]], kind: str) -> list[str]:
    chosen = [r for r in results if r["kind"] == kind]
    sizes = [r["n"] for r in chosen]
    head = ["figure", *(f"{n:,}" for n in sizes), "growth per 10x", "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, target in FIGURES:
        values = [r[key] for r in chosen]
        growth = ", ".join(
            f"{b / a:.1f}"
            for a, b in itertools.pairwise(values)
            if a > 0 and not key.endswith("ratio")
        )
        cells = [label, *(fmt(key, v) for v in values), growth or "-", target]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    warm_up()
    results = []
    for queued in (False, True):
        for n in args.sizes:
            result = measure(n, args.reps, queued=queued)
            results.append(result)
            print(
                json.dumps(
                    {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
                ),
                flush=True,
            )
    out = BENCH_DIR / "results"
    out.mkdir(exist_ok=True)
    (out / "store-latest.json").write_text(json.dumps(results, indent=1))
    lines = []
    for kind in ("finished", "queued"):
        lines += ["", f"### Stores of {kind} missions", "", *table(results, kind)]
    text = "\n".join(lines)
    print(text)
    (out / "store-latest.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
