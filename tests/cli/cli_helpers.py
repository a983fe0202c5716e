"""Helpers of the command-line tests (a uniquely named module: test folders share one
sys.path, so ``from conftest import`` would pick another folder's conftest)."""

from __future__ import annotations

import os
from pathlib import Path

from mission_widgets.testing.waiting import wait_for as wait_for
from mission_widgets.testing.waiting import worker_processes as worker_processes


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
