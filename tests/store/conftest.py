"""Store tests: real SQLite files, real processes (helpers run with sys.executable)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from mission_widgets.runtime.store import MissionStore

NOBODY = 65534


def run_python(code: str, *args: str, timeout: float = 60.0, as_nobody: bool = False, **kwargs):
    """Run ``code`` in a fresh interpreter (this tree on its path); the CompletedProcess."""
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    if as_nobody:
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(), **kwargs
    )


def spawn_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        **kwargs,
    )


@pytest.fixture
def nobody_dir():
    """A directory user nobody owns and can reach (pytest's tmp_path is root's, 0700)."""
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


def finished_row(store: MissionStore, mission_id: str, status: str = "succeeded", ago: float = 0):
    """A mission registered, started and ended through the store's own writes."""
    from mission_widgets.core.events import make_event

    store.register(mission_id, f"goal of {mission_id}", backend="subprocess", owner=None)
    start = make_event("mission_start", mission_id)
    store.append_event(start, {"status": "running"})
    done = make_event("mission_done", mission_id, status=status)
    done["timestamp"] -= ago
    store.append_event(done, {"status": status}, {"id": mission_id, "status": status})
