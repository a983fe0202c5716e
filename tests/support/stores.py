"""Helpers of the store tests: Python helper processes (sys.executable, optionally as user
nobody through setpriv) and rows written through the store's own API."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from mission_widgets.runtime.store import MissionStore

NOBODY = 65534

#: Why this process cannot give files to another user or run a helper as user nobody
#: (None: it can). Tests that must skip, with this reason, rather than fail.
NOT_ROOT = (
    None
    if os.geteuid() == 0 and shutil.which("setpriv")
    else "changes file owners and runs helpers as user nobody: needs root and setpriv"
)
needs_root = pytest.mark.skipif(NOT_ROOT is not None, reason=str(NOT_ROOT))
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env() -> dict[str, str]:
    """This process's environment with ``tests/`` on the path (for ``support`` imports)."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), TESTS_DIR]))
    return env


def run_python(code: str, *args: str, timeout: float = 60.0, as_nobody: bool = False, **kwargs):
    """Run ``code`` in a fresh interpreter (this tree on its path); the CompletedProcess."""
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    if as_nobody:
        command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=child_env(), **kwargs
    )


def spawn_python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        **kwargs,
    )


def finished_row(store: MissionStore, mission_id: str, status: str = "succeeded", ago: float = 0):
    """A mission registered, started and ended through the store's own writes."""
    from mission_widgets.core.events import make_event

    store.register(mission_id, f"goal of {mission_id}", backend="subprocess", owner=None)
    start = make_event("mission_start", mission_id)
    store.append_event(start, {"status": "running"})
    done = make_event("mission_done", mission_id, status=status)
    done["timestamp"] -= ago
    store.append_event(done, {"status": status}, {"id": mission_id, "status": status})


@contextlib.contextmanager
def small_tmpfs(mount_point, size: str = "256k"):
    """Mount a tmpfs of ``size`` at ``mount_point`` (a disk that fills up); unmounted after.
    Skips the test where mount(2) is not allowed (needs root)."""
    os.makedirs(mount_point, exist_ok=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)
