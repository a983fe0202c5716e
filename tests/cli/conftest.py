"""Fixtures of the command-line tests: run ``python -m mission_widgets`` for real, on stores
under the test's ``tmp_path``, and make sure no worker process outlives a test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from cli_helpers import cli_env, worker_processes


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
