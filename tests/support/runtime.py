"""Helpers of the runtime tests: condition waits, processes, direct reads of a store's
SQLite file, and run_all() on a thread. (Fixtures are in tests/conftest.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from mission_widgets import Mission, MissionOrchestrator, MissionStep, StallPolicy
from support.executors import echo
from support.waiting import WORKER_MODULE as WORKER_MODULE
from support.waiting import is_alive as is_alive
from support.waiting import kill_hard as kill_hard
from support.waiting import wait_for as wait_for
from support.waiting import worker_processes as worker_processes

#: The folder that holds the ``support`` package: for Python processes a test starts itself,
#: which put it on their sys.path to import ``support.executors``.
TESTS_DIR = Path(__file__).resolve().parents[1]


# -- waiting ---------------------------------------------------------------------------------


def holds_for(predicate: Callable[[], Any], duration: float, what: str, interval=0.05) -> None:
    """Assert that ``predicate()`` stays truthy for ``duration`` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        assert predicate(), f"no longer true: {what}"
        time.sleep(interval)


# -- missions ----------------------------------------------------------------------------------


def one_step(goal: str, executor: Any, **step_options: Any) -> Mission:
    """A mission of one step ``work`` run by ``executor`` (no retry waits)."""
    return Mission(
        goal,
        steps=[MissionStep("work", f"work of {goal}", executor, **step_options)],
        backoff_factor=0,
    )


def asking(executor: Any, model: Any = None, **policy: Any) -> Mission:
    """A mission whose step ``fragile`` (no retries) asks a person when it fails
    (``StallPolicy(on_max_retries="ask", **policy)``); step ``after`` depends on it."""
    return Mission(
        "asks a person",
        steps=[
            MissionStep("fragile", "may fail", executor, max_retries=0),
            MissionStep("after", "runs after it", echo, depends_on=["fragile"]),
        ],
        model=model,
        stall_policy=StallPolicy(on_max_retries="ask", **policy),
        backoff_factor=0,
    )


# -- processes ----------------------------------------------------------------------------------


def group_alive(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return members


def suspend_outside_write(proc: psutil.Process, db_path: str | os.PathLike) -> None:
    """SIGSTOP ``proc`` at a moment it holds no write lock on the store's SQLite file.

    A writer stopped inside a transaction would block every other writer of the store
    (SQLite's lock belongs to the process), so retry until the lock is seen free.
    """
    for _ in range(100):
        proc.suspend()
        with contextlib.closing(
            sqlite3.connect(db_path, timeout=0.25, isolation_level=None)
        ) as conn:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                return
            except sqlite3.OperationalError:
                proc.resume()
        time.sleep(0.01)
    raise AssertionError(f"could not stop {proc.pid} outside a store transaction")


# -- the store, read directly --------------------------------------------------------------------


def store_events(store_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every event row of a store, in order, read with plain sqlite3: ``seq``, ``mission_id``,
    ``event``, ``timestamp`` and the decoded ``payload`` (None when it does not decode)."""
    db = Path(store_dir) / "store.sqlite"
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT seq, mission_id, event, timestamp, payload FROM events ORDER BY seq"
        ).fetchall()
    events = []
    for seq, mission_id, name, ts, payload in rows:
        try:
            decoded = json.loads(payload)
        except ValueError:
            decoded = None
        events.append(
            {
                "seq": seq,
                "mission_id": mission_id,
                "event": name,
                "timestamp": ts,
                "payload": decoded,
            }
        )
    return events


def event_names(store_dir, mission_id: str) -> list[str]:
    return [e["event"] for e in store_events(store_dir) if e["mission_id"] == mission_id]


def spans(store_dir) -> dict[str, tuple[float | None, float | None]]:
    """mission id -> (timestamp of mission_start, timestamp of mission_done) from the events."""
    result: dict[str, list[float | None]] = {}
    for event in store_events(store_dir):
        span = result.setdefault(event["mission_id"], [None, None])
        if event["event"] == "mission_start":
            span[0] = event["timestamp"]
        elif event["event"] == "mission_done":
            span[1] = event["timestamp"]
    return {key: (start, done) for key, (start, done) in result.items()}


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end at t closes before a
    start at t opens)."""
    points = []
    for start, done in intervals:
        points.append((start, 1))
        points.append((done, -1))
    points.sort(key=lambda p: (p[0], p[1]))
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    return peak


def peak_running(store_dir) -> int:
    """The most missions running at once, counted from the store's events in the order the
    store wrote them (``mission_start`` opens one, ``mission_done`` closes it): no clocks."""
    running: set[str] = set()
    peak = 0
    for event in store_events(store_dir):
        if event["event"] == "mission_start":
            running.add(event["mission_id"])
        elif event["event"] == "mission_done":
            running.discard(event["mission_id"])
        peak = max(peak, len(running))
    return peak


class BackgroundRunAll:
    """``orchestrator.run_all()`` on a thread (so a test can act while it blocks)."""

    def __init__(self, orchestrator: MissionOrchestrator) -> None:
        self.result: list[Mission] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(orchestrator,), daemon=True)
        self._thread.start()

    def _run(self, orchestrator: MissionOrchestrator) -> None:
        try:
            self.result = orchestrator.run_all()
        except BaseException as exc:  # handed to the test by join()
            self.error = exc

    def join(self, timeout: float = 30.0) -> list[Mission]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"run_all() still blocks after {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result
