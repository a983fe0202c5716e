"""Fixtures of the command-line tests: run ``python -m mission_widgets`` for real, on stores
under the test's ``tmp_path``, and make sure no worker process outlives a test."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.cli import cli_env


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
def _guard(no_worker_left):
    """Every worker started under this test's tmp_path must be gone when the test ends
    (the guard is in tests/conftest.py)."""
