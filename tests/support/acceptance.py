"""Executors, models and helpers of the acceptance tests (issues 12 and 14), at module level
so worker processes import them by reference."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil

from support.cli import cli_env


async def async_echo(task, session, context):
    """An ``async def`` executor: awaits, then answers."""
    await asyncio.sleep(0.01)
    return f"async did: {task}"


class AsyncModel:
    """A model whose ``generate`` is a coroutine function (as most SDKs are)."""

    label = "async-model"

    async def generate(self, prompt: str) -> str:
        await asyncio.sleep(0.01)
        return "async model answer"


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


def run_cli(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m mission_widgets ARGS`` as a user types it (never the default store)."""
    return subprocess.run(
        [sys.executable, "-m", "mission_widgets", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp_path),
    )
