"""What-if: ways to build status() for 10,000 missions, against the P4 baseline.

    .venv/bin/python bench/whatif/status_variants.py [REPS]

* status() as is: SELECT ... ORDER BY submitted_at, id (a temp B-tree sort: no index), then
  DataFrame.from_records (per-column object inference) and the dtype fixes;
* columnar: SELECT without ORDER BY, columns built with their dtypes, sorted with numpy;
* incremental: finished missions never change, so their frame is cached and only the
  unfinished rows are read again (a real implementation needs a change counter so that a
  re-submitted mission invalidates its cached row).
The variants return the same ids in the same order with the same dtypes (checked).
"""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_runtime as br

from mission_widgets.core.mission import MISSION_STATUSES

S = br.STATUS_COLUMNS
FLOAT = {"progress", "submitted_at", "started_at", "finished_at", "last_heartbeat", "last_activity"}
INT = {"n_steps", "n_done", "n_failed", "prompt_tokens", "completion_tokens"}
TIMES = ("submitted_at", "started_at", "finished_at", "last_heartbeat", "last_activity")


def main() -> None:
    import numpy as np
    import pandas as pd

    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    root = br.tmp_store("p4alt")
    store = br.MissionStore(root)
    rows = br._p4_rows(br.P4_N)
    cols = [*S, "owner", "pid_started"]
    with sqlite3.connect(store.db_path) as conn:
        conn.executemany(
            f"INSERT INTO missions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [[r[c] for c in S] + ["1:0", r["started_at"]] for r in rows],
        )
    orch = br.MissionOrchestrator(store=root)
    conn = store._connect()
    select = f"SELECT {', '.join(S)} FROM missions"

    def frame_from_rows(records):
        columns = list(zip(*records)) if records else [()] * len(S)
        data = {}
        for name, values in zip(S, columns):
            if name in FLOAT:
                data[name] = np.array(values, dtype="float64")
            elif name in INT:
                data[name] = np.array(values, dtype="int64")
            elif name == "pid":
                data[name] = pd.array(values, dtype="Int64")
            else:
                data[name] = values
        return pd.DataFrame(data)

    def finish(frame):
        idx = np.lexsort((frame["id"].to_numpy(), frame["submitted_at"].to_numpy()))
        frame = frame.take(idx).reset_index(drop=True)
        now = time.time()
        started, finished = frame["started_at"].to_numpy(), frame["finished_at"].to_numpy()
        frame["elapsed_s"] = np.where(np.isnan(finished), now, finished) - started
        for name in TIMES:
            frame[name] = pd.to_datetime(frame[name].to_numpy(), unit="s", utc=True).as_unit("ns")
        frame["status"] = pd.Categorical(frame["status"], categories=MISSION_STATUSES)
        return frame[[*S[:10], "elapsed_s", *S[10:]]]

    def columnar():
        return finish(frame_from_rows(conn.execute(select).fetchall()))

    cache = {}

    def incremental():
        if "done" not in cache:
            done_rows = conn.execute(select + " WHERE finished_at IS NOT NULL").fetchall()
            cache["done"] = frame_from_rows(done_rows)
        live = frame_from_rows(conn.execute(select + " WHERE finished_at IS NULL").fetchall())
        live = live.astype(cache["done"].dtypes.to_dict())  # fixed dtypes in a real version
        return finish(pd.concat([cache["done"], live], ignore_index=True))

    a, b, c = orch.status(), columnar(), incremental()
    same = list(a["id"]) == list(b["id"]) == list(c["id"])
    dtypes = (a.dtypes == b.dtypes).all() and (a.dtypes == c.dtypes).all()
    print(f"same ids and order: {same}; same dtypes: {dtypes}")
    if not dtypes:
        for other in (b, c):
            diff = a.dtypes != other.dtypes
            print(pd.DataFrame({"status()": a.dtypes[diff], "variant": other.dtypes[diff]}))
    dicts = [dict(r) for r in rows]
    arms = {
        "baseline: DataFrame(10,000 dicts)": lambda: pd.DataFrame(dicts),
        "status() as is": orch.status,
        "  of which: SELECT ... ORDER BY ... fetchall": orch.store.status_records,
        "  SELECT without ORDER BY, fetchall": lambda: conn.execute(select).fetchall(),
        "columnar build, sort in numpy": columnar,
        "incremental (cache finished rows)": incremental,
    }

    def timed(fn):
        def arm():
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        return arm

    results = br.interleaved([timed(f) for f in arms.values()], reps, warmup=2)
    base = statistics.median(results[0])
    for name, xs in zip(arms, results):
        m = statistics.median(xs)
        print(f"{name:<46} {m * 1000:7.1f} ms  {m / base:.2f}x")

    shutil.rmtree(store.root, ignore_errors=True)


if __name__ == "__main__":
    main()
