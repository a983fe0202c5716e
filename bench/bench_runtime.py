"""Runtime benchmarks of mission_widgets (issue 4, "Benchmarks"): P1..P5 as ratios.

Run from the repository root:

    .venv/bin/python bench/bench_runtime.py            # full run (< 5 min)
    .venv/bin/python bench/bench_runtime.py --quick    # smoke run (< 60 s)

Every figure is a ratio against a baseline measured in the same run, with the subject and
baseline repetitions interleaved (A B B A ...) so that noise from a shared machine hits both
sides alike; medians are reported (p90 where it says something). Results go to
``bench/results/latest.json`` and ``bench/results/latest.md``; ``--save-results-md`` also
copies the Markdown to ``bench/RESULTS.md`` (the committed representative run).

Figures (targets from the issue):

* P1  no-op one-step mission, ``orch.run_async(m)`` -> ``handle.wait()`` (subprocess
      backend, warm workers) / spawn + wait of ``python -c "import cloudpickle"``  <= 0.25x
      (the same with ``warm=False``, a fresh interpreter per mission, beside it)
* P2  N no-op missions at max_concurrent=4 (submit + run_all): throughput / a
      fresh-Popen-per-task pool of 4 running ``python -c "import cloudpickle"`` >= 4x
* P3  1 x 4 s + 8 x 1 s missions at max_concurrent=3: makespan / ideal, where
      ideal = max(L, total_work / 3) from the measured step durations; the same workload
      run in aisdk-style fixed batches of 3 for comparison                    <= 1.05x
* P6  a mission whose step imports numpy, on an orchestrator with ``preload=["numpy"]``:
      run_async -> done / spawn + wait of ``python -c "import numpy"``          <= 0.1x

Warm workers (issue 23): missions are forked by a per-store fork server that has the worker
imported (runtime/warm_start.py says why a fork server and not a standby pool); each figure
runs after the server is up, as it is for every mission after a kernel's first.
* P4  ``orch.status()`` of 10,000 missions / ``pandas.DataFrame`` of 10,000 dicts  <= 2x
* P5  worker peak RSS (no-op mission) / peak RSS of ``python -c "import cloudpickle"``,
      both read with getrusage(RUSAGE_CHILDREN) in a tiny driver process      <= 1.3x

Diagnostics (no target) are printed under the table: where P1's time goes (from the
store's timestamps), bare interpreter start-up, the worker's import cost, slot refill gaps,
CPU per task, attach time. ``bench/RESULTS.md`` holds a recorded run.
"""

from __future__ import annotations

import argparse
import atexit
import concurrent.futures
import datetime as _dt
import gc
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
# Workers must import the executors by reference: bench/ on sys.path is handed to them
# through PYTHONPATH by the subprocess backend (runtime.subprocess_backend.worker_environment).
sys.path.insert(0, str(BENCH_DIR))
if str(REPO_DIR) not in sys.path:
    sys.path.insert(1, str(REPO_DIR))

import bench_tasks  # noqa: E402

from mission_widgets import Mission, MissionOrchestrator, MissionStep  # noqa: E402
from mission_widgets.runtime.payload import (  # noqa: E402
    build_payload,
    dumps_payload,
    write_payload,
)
from mission_widgets.runtime.store import STATUS_COLUMNS, MissionStore  # noqa: E402
from mission_widgets.runtime.subprocess_backend import worker_environment  # noqa: E402

CLOUDPICKLE_CMD = [sys.executable, "-c", "import cloudpickle"]

# -- small statistics helpers -------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def p90(xs: list[float]) -> float:
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    k = 0.9 * (len(s) - 1)
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def interleaved(arms: list[Callable[[], Any]], reps: int, warmup: int = 1) -> list[list[Any]]:
    """Run the arms alternately, forward then reversed order (A B C, C B A, ...), so drift
    and noise hit all of them alike; return each arm's results (warm-up rounds dropped)."""
    out: list[list[Any]] = [[] for _ in arms]
    for i in range(warmup + reps):
        order = list(range(len(arms)))
        if i % 2:
            order.reverse()
        for k in order:
            gc.collect()
            value = arms[k]()
            if i >= warmup:
                out[k].append(value)
    return out


def tmp_store(tag: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"mw-bench-{tag}-"))


def noop_mission(goal: str = "bench no-op") -> Mission:
    return Mission(
        goal, steps=[MissionStep("s1", "noop", executor=bench_tasks.noop)], auto_plan=False
    )


def sleep_mission(secs: float, goal: str) -> Mission:
    return Mission(
        goal,
        steps=[MissionStep("s1", f"sleep {secs}", executor=bench_tasks.sleeper)],
        auto_plan=False,
    )


def spawn_and_wait(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - t0


def cpu_now() -> tuple[float, float]:
    """(CPU seconds of this process, CPU seconds of its reaped children)."""
    import resource

    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time(), ch.ru_utime + ch.ru_stime


def fmt_s(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


# -- figures -------------------------------------------------------------------------------


def prepared_worker_cmd(store: MissionStore) -> tuple[list[str], str]:
    """What SubprocessBackend.launch does before its Popen: register the mission and write
    its payload. Returns the worker command line and the mission id."""
    m = noop_mission()
    store.register(m.id, m.goal, backend="subprocess", owner=None, n_steps=1)
    write_payload(store.mission_file(m.id), dumps_payload(build_payload(m)))
    store.log_file(m.id).touch()  # the backend makes it; the worker caps it at each beat
    return [sys.executable, "-m", "mission_widgets.worker", str(store.root), m.id, "2.0"], m.id


def warm_orchestrator(root: Path, **options: Any) -> MissionOrchestrator:
    """An orchestrator whose warm fork server is up (as after a kernel's first mission)."""
    orch = MissionOrchestrator(store=root, **options)
    orch.backend.check(noop_mission("starts the warm server"))
    deadline = time.monotonic() + 60
    while not orch.backend.warm_ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert orch.backend.warm_ready, "the warm fork server did not start"
    return orch


def run_one(orch: MissionOrchestrator, m: Mission) -> float:
    t0 = time.perf_counter()
    handle = orch.run_async(m)
    handle.wait(timeout=60)
    dt = time.perf_counter() - t0
    assert m.status == "succeeded", (m.status, m.error, orch.log_tail(m.id))
    return dt


def bench_p1(reps: int) -> dict[str, Any]:
    root = tmp_store("p1")
    orch = warm_orchestrator(root, max_concurrent=4)
    fresh_root = tmp_store("p1f")
    fresh = MissionOrchestrator(max_concurrent=4, store=fresh_root, warm=False)
    side_store = MissionStore(tmp_store("p1w"))
    env = worker_environment()
    phases: list[dict[str, float]] = []

    def subject() -> float:
        m = noop_mission()
        t_call = time.time()
        t0 = time.perf_counter()
        handle = orch.run_async(m)
        t_launched = time.time()
        handle.wait(timeout=60)
        dt = time.perf_counter() - t0
        t_done = time.time()
        assert m.status == "succeeded", (m.status, m.error, orch.log_tail(m.id))
        row = orch.store.row(m.id)
        # Where the time goes, from time.time() here and the store's time.time() stamps
        # (not pid_started: psutil's create_time is only as exact as the boot time, ~1 s).
        phases.append(
            {
                "run_async() returns": t_launched - t_call,
                "-> mission_start (worker start-up)": row["started_at"] - t_launched,
                "-> mission_done (the mission)": row["finished_at"] - row["started_at"],
                "-> wait() returns (exit, detection)": t_done - row["finished_at"],
            }
        )
        return dt

    def baseline() -> float:
        return spawn_and_wait(CLOUDPICKLE_CMD)

    def worker_alone() -> float:
        cmd, mission_id = prepared_worker_cmd(side_store)
        dt = spawn_and_wait(cmd, env)
        assert side_store.row(mission_id)["status"] == "succeeded"
        return dt

    def fresh_interpreter() -> float:
        return run_one(fresh, noop_mission())

    subj, base, alone, cold = interleaved(
        [subject, baseline, worker_alone, fresh_interpreter], reps, warmup=2
    )
    phases = phases[-reps:]
    orch.close()
    fresh.close()
    for path in (root, fresh_root, side_store.root):
        shutil.rmtree(path, ignore_errors=True)
    ratio = median(subj) / median(base)
    breakdown = {k: median([p[k] for p in phases]) for k in phases[0]}
    return {
        "figure": "P1 no-op mission latency (warm)",
        "subject": f"{fmt_s(median(subj))} (p90 {fmt_s(p90(subj))})",
        "baseline": f"{fmt_s(median(base))} (p90 {fmt_s(p90(base))})",
        "ratio": ratio,
        "ratio_p90": p90(subj) / p90(base),
        "target": "<= 0.25x",
        "ok": ratio <= 0.25,
        "samples": {
            "subject_s": subj,
            "baseline_s": base,
            "worker_alone_s": alone,
            "fresh_interpreter_s": cold,
        },
        "breakdown_median_s": breakdown,
        "worker_alone_s": median(alone),
        "fresh_interpreter_s": median(cold),
        "fresh_interpreter_p90_s": p90(cold),
    }


class LaunchLog:
    """Wraps an orchestrator's backend.launch to record when each mission was launched."""

    def __init__(self, orch: MissionOrchestrator) -> None:
        self.orch = orch
        self.times: list[tuple[float, str]] = []
        launch = orch.backend.launch

        def recorded(mission: Mission, heartbeat_secs: float):
            self.times.append((time.time(), mission.id))
            return launch(mission, heartbeat_secs)

        orch.backend.launch = recorded

    def refill_gaps(self, limit: int) -> list[float]:
        """Seconds from the k-th mission_done to the (limit+k)-th launch: how long a freed
        slot stays empty in a sliding window (exit + detection + refill)."""
        done = sorted(self.orch.store.row(mid)["finished_at"] for _, mid in self.times)
        launches = sorted(t for t, _ in self.times)
        return [launches[limit + k] - done[k] for k in range(len(launches) - limit)]

    def overheads(self, work: dict[str, float]) -> list[float]:
        """Per mission: (mission_done - launch) - the step's own work."""
        out = []
        for t, mid in self.times:
            out.append(self.orch.store.row(mid)["finished_at"] - t - work.get(mid, 0.0))
        return out


def bench_p2(n: int, reps: int) -> dict[str, Any]:
    limit = 4
    submit_times: list[float] = []
    gaps: list[float] = []
    cpu: dict[str, list[float]] = {"orch": [], "workers": [], "pool": [], "procs": []}

    def subject() -> float:
        root = tmp_store("p2")
        orch = warm_orchestrator(root, max_concurrent=limit)
        log = LaunchLog(orch)
        missions = [noop_mission(f"bench no-op {i}") for i in range(n)]
        c0 = cpu_now()
        t0 = time.perf_counter()
        for m in missions:
            orch.submit(m)
        t_sub = time.perf_counter()
        done = orch.run_all()
        dt = time.perf_counter() - t0
        c1 = cpu_now()
        cpu["orch"].append((c1[0] - c0[0]) / n)
        cpu["workers"].append((c1[1] - c0[1]) / n)
        submit_times.append(t_sub - t0)
        bad = [m for m in done if m.status != "succeeded"]
        assert len(done) == n and not bad, [(m.id, m.status, m.error) for m in bad[:3]]
        gaps.extend(log.refill_gaps(limit))
        orch.close()
        shutil.rmtree(root, ignore_errors=True)
        return n / dt

    def baseline() -> float:
        c0 = cpu_now()
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(limit) as pool:
            list(pool.map(lambda _: subprocess.run(CLOUDPICKLE_CMD, check=True), range(n)))
        dt = time.perf_counter() - t0
        c1 = cpu_now()
        cpu["pool"].append((c1[0] - c0[0]) / n)
        cpu["procs"].append((c1[1] - c0[1]) / n)
        return n / dt

    subj, base = interleaved([subject, baseline], reps, warmup=0)
    ratio = median(subj) / median(base)
    return {
        "figure": f"P2 throughput, {n} missions, limit {limit}",
        "subject": f"{median(subj):.1f} missions/s",
        "baseline": f"{median(base):.1f} procs/s",
        "ratio": ratio,
        "ratio_p90": min(subj) / max(base),  # throughput: the worst run against the best
        "target": ">= 4x",
        "ok": ratio >= 4.0,
        "samples": {"subject_per_s": subj, "baseline_per_s": base},
        "submit_s_median": median(submit_times),
        "refill_gap_s": {
            "median": median(gaps),
            "p90": p90(gaps),
            "max": max(gaps),
            "n": len(gaps),
            "n_over_100ms": sum(g > 0.1 for g in gaps),
        },
        "cpu_per_task_s": {k: median(v) for k, v in cpu.items()},
    }


P3_LONG = 4.0
P3_SHORT = 1.0
P3_N_SHORT = 8
P3_LIMIT = 3


def _p3_missions() -> list[Mission]:
    ms = [sleep_mission(P3_LONG, "long")]  # long first: the case fixed batches handle badly
    ms += [sleep_mission(P3_SHORT, f"short {i}") for i in range(P3_N_SHORT)]
    return ms


def _work_s(m: Mission) -> float:
    return sum(
        (e.get("duration_ms") or 0.0) / 1000.0
        for e in m.audit_log
        if e.get("event") == "step_success"
    )


def bench_p3(reps: int) -> dict[str, Any]:
    runs: list[dict[str, float]] = []
    batched_runs: list[dict[str, float]] = []

    def run(batched: bool) -> dict[str, float]:
        root = tmp_store("p3")
        orch = warm_orchestrator(root, max_concurrent=P3_LIMIT)
        log = LaunchLog(orch)
        missions = _p3_missions()
        t0 = time.perf_counter()
        if batched:  # aisdk: a batch of `limit` runs to its slowest mission, then the next
            for i in range(0, len(missions), P3_LIMIT):
                for m in missions[i : i + P3_LIMIT]:
                    orch.submit(m)
                orch.run_all()
        else:
            for m in missions:
                orch.submit(m)
            orch.run_all()
        makespan = time.perf_counter() - t0
        assert all(m.status == "succeeded" for m in missions)
        work = [_work_s(m) for m in missions]
        ideal = max(max(work), sum(work) / P3_LIMIT)
        batches = [work[i : i + P3_LIMIT] for i in range(0, len(work), P3_LIMIT)]
        overhead = log.overheads({m.id: w for m, w in zip(missions, work)})
        gaps = [] if batched else log.refill_gaps(P3_LIMIT)
        orch.close()
        shutil.rmtree(root, ignore_errors=True)
        return {
            "makespan_s": makespan,
            "ideal_s": ideal,
            "ratio": makespan / ideal,
            "batched_work_only_s": sum(max(b) for b in batches),
            "overhead_median_s": median(overhead),
            "refill_gaps_s": gaps,
        }

    sliding, batched = interleaved([lambda: run(False), lambda: run(True)], reps, warmup=0)
    runs, batched_runs = sliding, batched
    ratio = median([r["ratio"] for r in runs])
    ideal = median([r["ideal_s"] for r in runs])
    b_ratio = median([r["ratio"] for r in batched_runs])
    b_work = median([r["batched_work_only_s"] for r in batched_runs])
    label = f"1 x {P3_LONG:g}s + {P3_N_SHORT} x {P3_SHORT:g}s, limit {P3_LIMIT}"
    return {
        "figure": f"P3 makespan/ideal ({label})",
        "subject": f"{median([r['makespan_s'] for r in runs]):.2f} s sliding",
        "baseline": f"{ideal:.2f} s ideal",
        "ratio": ratio,
        "ratio_p90": p90([r["ratio"] for r in runs]),
        "target": "<= 1.05x",
        "ok": ratio <= 1.05,
        "samples": {"sliding": runs, "fixed_batches": batched_runs},
        "overhead_per_mission_s": median([r["overhead_median_s"] for r in runs]),
        "refill_gap_s": {
            "median": median([g for r in runs for g in r["refill_gaps_s"]]),
            "max": max(g for r in runs for g in r["refill_gaps_s"]),
        },
        "fixed_batches": {
            "makespan_s": median([r["makespan_s"] for r in batched_runs]),
            "ratio_to_ideal": b_ratio,
            "work_only_s": b_work,
            "work_only_ratio": b_work / ideal,
        },
    }


P4_N = 10_000
P4_STATUSES = ("succeeded",) * 8 + ("failed", "running")


def _p4_rows(n: int) -> list[dict[str, Any]]:
    now = time.time() - 86400
    rows = []
    for i in range(n):
        status = P4_STATUSES[i % len(P4_STATUSES)]
        started = now + i * 2.0
        finished = None if status == "running" else started + 1.5
        rows.append(
            {
                "id": f"mission_20250101000000_{i:08x}",
                "goal": f"benchmark goal number {i}: summarise the findings",
                "status": status,
                "n_steps": 3,
                "n_done": 3 if status == "succeeded" else 1,
                "n_failed": 1 if status == "failed" else 0,
                "progress": 1.0 if status == "succeeded" else 0.33,
                "submitted_at": started - 0.1,
                "started_at": started,
                "finished_at": finished,
                "backend": "subprocess",
                "pid": 100000 + i,
                "last_heartbeat": started + 1.0,
                "last_activity": started + 1.2,
                "error": "ValueError: boom" if status == "failed" else None,
                "stall_reason": None,
                "model": "demo",
                "prompt_tokens": 120,
                "completion_tokens": 40,
                "result_summary": None,
            }
        )
    return rows


def bench_p4(reps: int) -> dict[str, Any]:
    import pandas as pd

    root = tmp_store("p4")
    store = MissionStore(root)
    rows = _p4_rows(P4_N)
    cols = [*STATUS_COLUMNS, "owner", "pid_started"]
    with sqlite3.connect(store.db_path) as conn:  # bulk insert: same columns as register()
        conn.executemany(
            f"INSERT INTO missions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [[r.get(c) for c in STATUS_COLUMNS] + ["1:0", r["started_at"]] for r in rows],
        )
    store.close()
    t0 = time.perf_counter()
    orch = MissionOrchestrator(store=root)  # reattaches to all 10,000 (diagnostic only)
    attach_s = time.perf_counter() - t0
    # Its watcher ends the 1,000 "running" rows (their pids are not workers) as failed;
    # status() is measured once the mirrors are settled, not while that runs.
    deadline = time.monotonic() + 120
    while orch.watching and time.monotonic() < deadline:
        time.sleep(0.05)
    settle_s = time.perf_counter() - t0 - attach_s
    frame = orch.status()
    assert len(frame) == P4_N, len(frame)
    dicts = [dict(r) for r in rows]

    def subject() -> float:
        t = time.perf_counter()
        orch.status()
        return time.perf_counter() - t

    def baseline() -> float:
        t = time.perf_counter()
        pd.DataFrame(dicts)
        return time.perf_counter() - t

    subj, base = interleaved([subject, baseline], reps, warmup=2)
    orch.close()
    shutil.rmtree(root, ignore_errors=True)
    ratio = median(subj) / median(base)
    return {
        "figure": f"P4 status() of {P4_N:,} missions",
        "subject": f"{median(subj) * 1000:.1f} ms (p90 {p90(subj) * 1000:.1f})",
        "baseline": f"{median(base) * 1000:.1f} ms (p90 {p90(base) * 1000:.1f})",
        "ratio": ratio,
        "target": "<= 2x",
        "ok": ratio <= 2.0,
        "samples": {"subject_s": subj, "baseline_s": base},
        "attach_10k_s": attach_s,
        "settle_10k_s": settle_s,
    }


def bench_p6(reps: int) -> dict[str, Any]:
    """A mission that needs numpy, on a warm server that preloaded it, against a fresh
    interpreter importing numpy (what every such mission paid before warm workers)."""
    root, plain_root = tmp_store("p6"), tmp_store("p6p")
    orch = warm_orchestrator(root, max_concurrent=2, preload=["numpy"])
    plain = warm_orchestrator(plain_root, max_concurrent=2)

    def numpy_mission() -> Mission:
        step = MissionStep("s1", "import numpy", executor=bench_tasks.import_numpy)
        return Mission("bench numpy", steps=[step], auto_plan=False)

    def subject() -> float:
        return run_one(orch, numpy_mission())

    def baseline() -> float:
        return spawn_and_wait([sys.executable, "-c", "import numpy"])

    def warm_without_preload() -> float:
        return run_one(plain, numpy_mission())

    subj, base, plain_s = interleaved([subject, baseline, warm_without_preload], reps, warmup=2)
    orch.close()
    plain.close()
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(plain_root, ignore_errors=True)
    ratio = median(subj) / median(base)
    return {
        "figure": 'P6 numpy mission, preload=["numpy"]',
        "subject": f"{fmt_s(median(subj))} (p90 {fmt_s(p90(subj))})",
        "baseline": f"{fmt_s(median(base))} (p90 {fmt_s(p90(base))}) import numpy",
        "ratio": ratio,
        "ratio_p90": p90(subj) / p90(base),
        "target": "<= 0.1x",
        "ok": ratio <= 0.1,
        "samples": {"subject_s": subj, "baseline_s": base, "warm_no_preload_s": plain_s},
        "warm_no_preload_s": median(plain_s),
    }


# A tiny driver: no site, no subprocess module, so its own RSS stays below what it measures
# (on Linux a vfork/posix_spawn child's ru_maxrss can include the parent's pages).
RSS_DRIVER = r"""
import json, os, resource, sys
cmd = json.loads(sys.argv[1])
env = json.loads(sys.argv[2])
null = os.devnull
acts = [(os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_DUP2, 1, 2)]
pid = os.posix_spawn(cmd[0], cmd, env, file_actions=acts)
_, status = os.waitpid(pid, 0)
print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  os.waitstatus_to_exitcode(status)]))
"""


def peak_rss_kb(cmd: list[str], env: dict[str, str]) -> int:
    """Peak RSS of ``cmd`` in KiB (never below the driver's own, see /bin/true)."""
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RSS_DRIVER, json.dumps(cmd), json.dumps(env)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    child, code = json.loads(out)
    if code != 0:
        raise RuntimeError(f"{cmd} exited {code}")
    return child


def bench_p5(reps: int) -> dict[str, Any]:
    root = tmp_store("p5")
    store = MissionStore(root)
    env = worker_environment()

    def subject() -> int:
        cmd, mission_id = prepared_worker_cmd(store)
        kb = peak_rss_kb(cmd, env)
        row = store.row(mission_id)
        assert row["status"] == "succeeded", row
        return kb

    def baseline() -> int:
        return peak_rss_kb(CLOUDPICKLE_CMD, env)

    subj, base = interleaved([subject, baseline], reps, warmup=1)
    diag = {
        "python -c pass": peak_rss_kb([sys.executable, "-c", "pass"], env),
        "python -c 'import mission_widgets.runtime.worker'": peak_rss_kb(
            [sys.executable, "-c", "import mission_widgets.runtime.worker"], env
        ),
        "measuring floor (driver's own RSS, via /bin/true)": peak_rss_kb(["/bin/true"], env),
    }
    store.close()
    shutil.rmtree(root, ignore_errors=True)
    ratio = median(subj) / median(base)
    return {
        "figure": "P5 worker peak RSS",
        "subject": f"{median(subj) / 1024:.1f} MiB",
        "baseline": f"{median(base) / 1024:.1f} MiB",
        "ratio": ratio,
        "target": "<= 1.3x",
        "ok": ratio <= 1.3,
        "samples": {"subject_kib": subj, "baseline_kib": base},
        "rss_kib": diag,
    }


def bench_startup(reps: int, no_pyc_env: dict[str, str] | None) -> dict[str, float]:
    """Diagnostic: bare start-up times (interleaved), for reading P1 and P2."""
    env = worker_environment()
    worker_import = [sys.executable, "-c", "import mission_widgets.runtime.worker"]
    cmds = {
        "python -c pass": ([sys.executable, "-c", "pass"], env),
        "python -c 'import cloudpickle'": (CLOUDPICKLE_CMD, env),
        "python -c 'import mission_widgets.runtime.worker'": (worker_import, env),
    }
    if no_pyc_env is not None:
        cmds["  same, package not byte-compiled (env as given)"] = (worker_import, no_pyc_env)
    arms = [lambda c=c, e=e: spawn_and_wait(c, e) for c, e in cmds.values()]
    samples = interleaved(arms, reps, warmup=1)
    return {name: median(v) for name, v in zip(cmds, samples)}


def configure_bytecode(as_is: bool) -> tuple[str, dict[str, str] | None]:
    """Let child processes cache bytecode, as a pip-installed package would have it.

    With PYTHONDONTWRITEBYTECODE set (as in some sandboxes) an editable checkout is never
    byte-compiled and every worker recompiles the package's source (~20 ms), which is not what
    users of a wheel see. Unless --as-is, children get a private PYTHONPYCACHEPREFIX (nothing
    is written into the package). Returns a note and the original env (for a diagnostic).
    """
    if as_is or not (os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.flags.dont_write_bytecode):
        return "bytecode: environment as given", None
    original = worker_environment()
    cache = tempfile.mkdtemp(prefix="mw-bench-pyc-")
    atexit.register(shutil.rmtree, cache, True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = cache
    return (
        "bytecode: PYTHONDONTWRITEBYTECODE was set; children cache .pyc under a temporary "
        "PYTHONPYCACHEPREFIX (as an installed wheel would have them)",
        original,
    )


def warm_up() -> None:
    """Fill the bytecode cache and the page cache before anything is measured."""
    store = MissionStore(tmp_store("warm"))
    env = worker_environment()
    for _ in range(2):
        cmd, _ = prepared_worker_cmd(store)
        spawn_and_wait(cmd, env)
        spawn_and_wait(CLOUDPICKLE_CMD, env)
        spawn_and_wait([sys.executable, "-c", "import mission_widgets.runtime.worker"], env)
    store.close()
    shutil.rmtree(store.root, ignore_errors=True)


# -- report --------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=True
            ).stdout.strip()
        except Exception:
            return "?"

    import cloudpickle
    import pandas

    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "pandas": pandas.__version__,
        "cloudpickle": cloudpickle.__version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": len(git("status", "--porcelain", "--", "mission_widgets").splitlines()),
    }


def table(figures: list[dict[str, Any]]) -> str:
    head = ("figure", "subject", "baseline", "ratio", "ratio p90", "load", "target", "verdict")
    body = [
        (
            f["figure"],
            f["subject"],
            f["baseline"],
            f"{f['ratio']:.2f}x",
            f"{f['ratio_p90']:.2f}x" if "ratio_p90" in f else "-",
            f"{f['loadavg_1min_before']:.1f}",
            f["target"],
            "PASS" if f["ok"] else "MISS",
        )
        for f in figures
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def diagnostics(
    figures: dict[str, dict[str, Any]], startup: dict[str, float], env_note: str
) -> str:
    out = []
    if "P1" in figures:
        out.append("P1 where the time goes (medians; store timestamps):")
        for k, v in figures["P1"]["breakdown_median_s"].items():
            out.append(f"  {k:<46} {v * 1000:7.1f} ms")
        out.append(
            f"  {'worker alone (spawn + wait, no orchestrator)':<46} "
            f"{figures['P1']['worker_alone_s'] * 1000:7.1f} ms"
        )
        out.append(
            f"  {'same mission, warm=False (fresh interpreter)':<46} "
            f"{figures['P1']['fresh_interpreter_s'] * 1000:7.1f} ms "
            f"(p90 {figures['P1']['fresh_interpreter_p90_s'] * 1000:.1f})"
        )
    out.append("Bare start-up (spawn + wait, medians):")
    for k, v in startup.items():
        out.append(f"  {k:<52} {v * 1000:7.1f} ms")
    if "P2" in figures:
        f2 = figures["P2"]
        g = f2["refill_gap_s"]
        out.append(f"P2 submit() of all missions (median): {f2['submit_s_median']:.2f} s")
        out.append(
            f"P2 slot refill gap (mission_done -> next launch): median {g['median'] * 1000:.0f} "
            f"ms, p90 {g['p90'] * 1000:.0f} ms, max {g['max'] * 1000:.0f} ms; "
            f"{g['n_over_100ms']} of {g['n']} over 100 ms"
        )
        c = {k: v * 1000 for k, v in f2["cpu_per_task_s"].items()}
        out.append(
            f"P2 CPU per task ({os.cpu_count()} CPUs): mission {c['workers'] + c['orch']:.0f} ms "
            f"(worker {c['workers']:.0f} + orchestrator {c['orch']:.0f}) vs baseline "
            f"{c['procs'] + c['pool']:.0f} ms (process {c['procs']:.0f} + pool {c['pool']:.0f})"
        )
    if "P3" in figures:
        fb = figures["P3"]["fixed_batches"]
        g3 = figures["P3"]["refill_gap_s"]
        out.append(
            f"P3 per-mission overhead (launch -> mission_done, minus work): "
            f"{figures['P3']['overhead_per_mission_s'] * 1000:.0f} ms; slot refill gap "
            f"median {g3['median'] * 1000:.0f} ms, max {g3['max'] * 1000:.0f} ms"
        )
        out.append(
            f"P3 fixed batches of {P3_LIMIT} (aisdk): {fb['makespan_s']:.2f} s measured = "
            f"{fb['ratio_to_ideal']:.2f}x ideal (work only: {fb['work_only_s']:.2f} s = "
            f"{fb['work_only_ratio']:.2f}x)"
        )
    if "P4" in figures:
        out.append(
            f"P4 MissionOrchestrator(store=...) attaching {P4_N:,} missions: "
            f"{figures['P4']['attach_10k_s']:.2f} s; its watcher ending the 1,000 dead "
            f"'running' rows: {figures['P4']['settle_10k_s']:.2f} s"
        )
    if "P6" in figures:
        out.append(
            "P6 the same numpy mission on a warm server without preload: "
            f"{figures['P6']['warm_no_preload_s'] * 1000:.0f} ms"
        )
    if "P5" in figures:
        out.append("P5 peak RSS of other commands (same driver):")
        for k, v in figures["P5"]["rss_kib"].items():
            out.append(f"  {k:<50} {v / 1024:6.1f} MiB")
    out.append(env_note)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (< 60 s)")
    parser.add_argument(
        "--only", default="", help="comma-separated figures to run, e.g. P1,P4 (default: all)"
    )
    parser.add_argument(
        "--save-results-md", action="store_true", help="also write bench/RESULTS.md"
    )
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (workers then recompile the package)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECS",
        help="first wait up to SECS for the 1-min load average to drop below 0.5 per CPU",
    )
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait_quiet
    while os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1) and time.monotonic() < deadline:
        time.sleep(5)
    bytecode_note, no_pyc_env = configure_bytecode(args.as_is)
    warm_up()
    q = args.quick
    plan = {
        "P1": lambda: bench_p1(reps=7 if q else 25),
        "P2": lambda: bench_p2(n=50 if q else 200, reps=2 if q else 3),
        "P3": lambda: bench_p3(reps=1 if q else 3),
        "P4": lambda: bench_p4(reps=5 if q else 15),
        "P5": lambda: bench_p5(reps=3 if q else 7),
        "P6": lambda: bench_p6(reps=5 if q else 15),
    }
    only = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    env = environment()
    t_start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for name, fn in plan.items():
        if only and name not in only:
            continue
        t = time.perf_counter()
        load = os.getloadavg()[0]
        results[name] = fn()
        results[name]["loadavg_1min_before"] = load
        print(
            f"  {name}: ratio {results[name]['ratio']:.2f}x ({time.perf_counter() - t:.1f} s, "
            f"load {load:.2f})",
            file=sys.stderr,
            flush=True,
        )
    startup = bench_startup(5 if q else 15, no_pyc_env)
    env["loadavg_end"] = os.getloadavg()
    env["total_s"] = round(time.perf_counter() - t_start, 1)
    env["mode"] = "quick" if q else "full"
    env["bytecode"] = bytecode_note

    tab = table(list(results.values()))
    diag = diagnostics(results, startup, bytecode_note)
    print(tab)
    print()
    print(diag)
    print(
        f"\n{env['mode']} run, {env['total_s']} s, {env['cpus']} CPUs, load "
        f"{env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f}"
    )

    out_dir = BENCH_DIR / "results"
    out_dir.mkdir(exist_ok=True)
    payload = {"environment": env, "figures": results, "startup_s": startup}
    (out_dir / "latest.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    md = (
        f"# mission_widgets runtime benchmarks\n\n"
        f"Run {env['date']} ({env['mode']} mode, {env['total_s']} s) with "
        f"`.venv/bin/python bench/bench_runtime.py{' --quick' if q else ''}`: Python "
        f"{env['python']}, {env['cpus']} CPUs, {env['platform']}, load average "
        f"{env['loadavg_start'][0]:.2f} -> {env['loadavg_end'][0]:.2f}, commit "
        f"{env['git_commit']} (+{env['git_dirty_files']} uncommitted package files).\n\n"
        f"Ratios are subject / baseline measured in the same run, repetitions interleaved, "
        f"medians (p90 in brackets).\n\n{tab}\n\n```\n{diag}\n```\n"
    )
    (out_dir / "latest.md").write_text(md)
    if args.save_results_md:
        (BENCH_DIR / "RESULTS.md").write_text(md)


if __name__ == "__main__":
    main()
