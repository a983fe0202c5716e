"""Fixtures of the fault-injection suite: a directory for gates and marks and child kernels
that are always killed at the end (the small disk of the full-disk fault, ``small_disk``,
is in tests/conftest.py)."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def marks(tmp_path):
    """Gates and marks (outside the store): ``marks / "gate"`` opens gated missions."""
    path = tmp_path / "marks"
    path.mkdir()
    return path


@pytest.fixture
def kernels():
    """Child kernels of the test; each is killed (if still running) at teardown."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
