"""Fixtures of the command-line tests: run ``python -m mission_widgets`` for real, on stores
under the test's ``tmp_path``, and make sure no worker process outlives a test."""

from __future__ import annotations

import functools

import pytest
from support import cli


@pytest.fixture
def run_cli(tmp_path):
    """``run_cli(*args, timeout=60, **env)`` -> CompletedProcess of ``python -m mission_widgets``
    (support.cli.run_cli on this test's tmp_path)."""
    return functools.partial(cli.run_cli, tmp_path)


@pytest.fixture(autouse=True)
def _guard(no_worker_left):
    """Every worker started under this test's tmp_path must be gone when the test ends
    (the guard is in tests/conftest.py)."""
