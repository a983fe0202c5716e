"""Fixtures of the command-line tests: run ``python -m mission_widgets`` for real, on stores
under the test's ``tmp_path``, and make sure no worker process outlives a test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

WORKER_MODULE = "mission_widgets.worker"


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``predicate()`` until truthy and return its value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(0.05)


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NO_COLOR="1",
        COLUMNS="120",
        PYTHONUNBUFFERED="1",
        # never the user's default store, never the system temp dir
        MISSION_WIDGETS_STORE=str(tmp_path / "default-store"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        TMPDIR=str(tmp_path / "tmp"),
    )
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(extra)
    return env


@pytest.fixture
def run_cli(tmp_path):
    """``run_cli(*args, timeout=60)`` -> CompletedProcess of ``python -m mission_widgets``."""

    def run(*args: str, timeout: float = 60.0, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mission_widgets", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(tmp_path, **env),
            stdin=subprocess.DEVNULL,
        )

    return run


def worker_processes(marker: str | os.PathLike) -> list[psutil.Process]:
    """Live (non-zombie) worker processes whose command line mentions ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if WORKER_MODULE in cmdline and str(marker) in cmdline:
            found.append(proc)
    return found


@pytest.fixture(autouse=True)
def no_leftover_workers(tmp_path):
    """Every worker started under this test's tmp_path must be gone when the test ends
    (waited for with a deadline; stragglers are killed, by pid, and fail the test)."""
    yield
    marker = str(tmp_path.resolve())
    deadline = time.monotonic() + 10.0
    left = worker_processes(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = worker_processes(marker)
    for proc in left:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    assert not left, f"worker processes outlived the test: {[p.pid for p in left]}"
