"""Fixtures of the store tests: a store under tmp_path, a directory user nobody owns."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from support.stores import NOBODY, NOT_ROOT, spawn_python

from mission_widgets.runtime.store import MissionStore


@pytest.fixture
def nobody_dir():
    """A directory user nobody owns and can reach (pytest's tmp_path is root's, 0700); the
    test skips, saying why, where files cannot be given to another user."""
    if NOT_ROOT is not None:
        pytest.skip(NOT_ROOT)
    top = tempfile.mkdtemp(prefix="mw-store-test-")
    os.chmod(top, 0o755)
    folder = os.path.join(top, "nobody")
    os.mkdir(folder)
    os.chown(folder, NOBODY, NOBODY)
    yield Path(folder)
    shutil.rmtree(top)


@pytest.fixture
def store(tmp_path) -> MissionStore:
    made = MissionStore(tmp_path / "store")
    yield made
    made.close()


@pytest.fixture
def spawn():
    """``spawn(code, *args)`` starts a helper process; any still running at teardown is
    killed (by its pid) and its pipes closed."""
    started = []

    def start(code, *args):
        proc = spawn_python(code, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
