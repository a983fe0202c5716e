"""Helpers of the command-line tests: the environment of a ``python -m mission_widgets`` run."""

from __future__ import annotations

import os
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
