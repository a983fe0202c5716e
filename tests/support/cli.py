"""Helpers of the command-line tests: the environment of a ``python -m mission_widgets`` run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.waiting import wait_for as wait_for
from support.waiting import worker_processes as worker_processes


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


def run_cli(
    tmp_path: Path, *args: object, timeout: float = 60.0, **env: str
) -> subprocess.CompletedProcess:
    """``python -m mission_widgets ARGS`` as a user types it, with no input and never the
    user's default store (see :func:`cli_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "mission_widgets", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(tmp_path, **env),
        stdin=subprocess.DEVNULL,
    )
