"""Fixtures of the fault-injection suite: a directory for gates and marks, child kernels
that are always killed at the end, and a small tmpfs for the full-disk fault."""

from __future__ import annotations

import subprocess
import uuid

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


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (a disk that can be filled); unmounted at teardown."""
    mount_point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)
