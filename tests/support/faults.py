"""Executors and helpers of the backend and fault-injection tests (tests/backends, tests/faults).

Executors live at module level so cloudpickle sends them to workers by reference.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mission_widgets.core.events import emit_event
from support.executors import GATE_TIMEOUT, Gated, touch


class CustomStop(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


def raise_system_exit(task, session, context):
    raise SystemExit(7)


def raise_keyboard_interrupt(task, session, context):
    raise KeyboardInterrupt


def raise_custom_base(task, session, context):
    raise CustomStop("stopped by a custom BaseException")


def return_lock(task, session, context):
    """A result that cannot be pickled."""
    return threading.Lock()


def mark(path) -> None:
    touch(path, str(os.getpid()))


@contextlib.contextmanager
def immutable(*paths: str | os.PathLike) -> Iterator[None]:
    """Make files read-only even for root (``chattr +i``): writes fail with an I/O error,
    reads still work -- a store that became read-only under a running worker."""
    present = [str(p) for p in paths if os.path.exists(p)]
    done: list[str] = []
    try:
        for path in present:
            made = subprocess.run(["chattr", "+i", path], capture_output=True, text=True)
            if made.returncode != 0:  # not root, or a file system without the flag
                pytest.skip(f"cannot make {path} immutable here: {made.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", path], check=True)


def store_files(store_dir: str | os.PathLike) -> list[Path]:
    """The SQLite file of a store and its WAL (the files a write changes)."""
    db = Path(store_dir) / "store.sqlite"
    return [db, Path(str(db) + "-wal")]


class GatedThenMark(Gated):
    """Like Gated, then writes ``done`` (a file outside the store: it is seen also when the
    store's disk is full)."""

    def __init__(self, gate, started, done, result="released"):
        super().__init__(gate, started=started, result=result)
        self.done = str(done)

    def __call__(self, task, session, context):
        result = super().__call__(task, session, context)
        touch(self.done, str(os.getpid()))
        return result


# -- counting what a fault did ------------------------------------------------------------------


def tally(store_dir: str | os.PathLike, ids: list[str]) -> dict[str, list[str]]:
    """Per fault: ``lost`` (submitted, never ended nor queued), ``run_twice`` (more than one
    ``mission_start``), ``ended_twice`` (more than one ``mission_done``), read from the store
    file with plain sqlite3."""
    db = Path(store_dir) / "store.sqlite"
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        counts = conn.execute(
            "SELECT mission_id, event, COUNT(*) FROM events"
            " WHERE event IN ('mission_start', 'mission_done') GROUP BY mission_id, event"
        ).fetchall()
        rows = {
            mission_id: (status, started, finished)
            for mission_id, status, started, finished in conn.execute(
                "SELECT id, status, started_at, finished_at FROM missions"
            )
        }
    starts = collections.Counter({m: n for m, e, n in counts if e == "mission_start"})
    ends = collections.Counter({m: n for m, e, n in counts if e == "mission_done"})

    def queued(mission_id: str) -> bool:
        status, started, finished = rows.get(mission_id, (None, None, None))
        return status == "pending" and started is None and finished is None

    return {
        "lost": [m for m in ids if ends[m] == 0 and not queued(m)],
        "run_twice": [m for m in ids if starts[m] > 1],
        "ended_twice": [m for m in ids if ends[m] > 1],
    }


def record_fault(fault: str, ids: list[str], counts: dict[str, list[str]]) -> None:
    """Append the fault's counts to ``$MISSION_WIDGETS_FAULTS_LOG`` (bench/faults_report.py)
    and assert that no mission was lost, run twice or ended twice."""
    line = {"fault": fault, "missions": len(ids), **{k: len(v) for k, v in counts.items()}}
    log = os.environ.get(FAULTS_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
    assert counts == {"lost": [], "run_twice": [], "ended_twice": []}, (fault, counts)


FAULTS_LOG_ENV = "MISSION_WIDGETS_FAULTS_LOG"


# -- a kernel in a child process ------------------------------------------------------------------

KERNEL = """
import json, sys, time
sys.path.insert(0, {tests!r})
from support.faults import GatedThenMark
from support.runtime import one_step
from mission_widgets import MissionOrchestrator
orch = MissionOrchestrator({max_concurrent}, store={store!r}, backend={backend!r})
ids = []
for i in range({n}):
    mission = one_step(f"fault {{i}}", GatedThenMark({gate!r}, {marks!r} + f"/started-{{i}}",
                                                   {marks!r} + f"/done-{{i}}", result=i))
    orch.submit(mission)
    ids.append(mission.id)
if {start}:
    orch.start_queued()
print(json.dumps(ids), flush=True)
time.sleep(600)
"""


def start_kernel(
    tests_dir,
    store_dir,
    marks_dir,
    *,
    n: int,
    max_concurrent: int = 2,
    start: bool = True,
    backend: str = "subprocess",
) -> tuple[subprocess.Popen, list[str]]:
    """A kernel (a child ``sys.executable``) that owns an orchestrator on ``store_dir`` with
    ``n`` gated missions (``marks_dir/gate`` opens them), started up to ``max_concurrent``
    if ``start``; returns the process and the mission ids once they are submitted."""
    code = KERNEL.format(
        tests=str(tests_dir),
        store=str(store_dir),
        gate=str(Path(marks_dir) / "gate"),
        marks=str(marks_dir),
        n=n,
        max_concurrent=max_concurrent,
        start=start,
        backend=backend,
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=str(marks_dir)
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.kill()
        raise AssertionError(f"the kernel exited ({proc.wait()}) before submitting")
    return proc, json.loads(line)


class BulkyChatter:
    """Emits ``tick`` events carrying ``size`` bytes each, back to back, until ``gate``
    exists: the worker spends most of its time inside store writes."""

    def __init__(self, gate, size=200_000):
        self.gate, self.size = str(gate), size

    def __call__(self, task, session, context):
        tick = 0
        deadline = time.monotonic() + GATE_TIMEOUT
        while not os.path.exists(self.gate) and time.monotonic() < deadline:
            tick += 1
            emit_event("tick", n=tick, blob="x" * self.size)
        return tick


class FailOnceThenShowContext:
    """Fails its first attempt; later attempts write the context they got to ``shown`` and
    succeed (what a retry after a person's decision sees)."""

    def __init__(self, shown):
        self.shown = str(shown)
        self.tried = self.shown + ".tried"

    def __call__(self, task, session, context):
        if not os.path.exists(self.tried):
            touch(self.tried)
            raise RuntimeError("first attempt fails")
        touch(self.shown, context or "")
        return "fixed"


def holds_write_lock(db: str | os.PathLike) -> bool:
    """Whether some process holds the write lock of the SQLite file ``db``."""
    with contextlib.closing(sqlite3.connect(db, timeout=0, isolation_level=None)) as conn:
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True


def stop_inside_write(proc: psutil.Process, db: str | os.PathLike) -> None:
    """SIGSTOP ``proc`` at a moment it holds the store's write lock."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc.suspend()
        # Held twice, 0.2 s apart: the lock is the stopped worker's, not a passing writer's.
        if holds_write_lock(db):
            time.sleep(0.2)
            if holds_write_lock(db):
                return
        proc.resume()
    raise AssertionError(f"could not stop {proc.pid} inside a store write")
