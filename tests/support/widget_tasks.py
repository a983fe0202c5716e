"""Executors for panel tests (module level, so worker processes can import them)."""

from __future__ import annotations

import os
import time

from mission_widgets import report_progress


def quick(task, session, context):
    return f"done: {task}"


def wait_for_file(task, session, context):
    """Report some progress, then wait until the file named in the task exists."""
    report_progress(0.5, "half way")
    path = task.rsplit(" ", 1)[-1]
    while not os.path.exists(path):
        time.sleep(0.05)
    return "released"


def hang_quietly(task, session, context):
    while True:
        time.sleep(0.1)


def boom(task, session, context):
    raise RuntimeError("boom in " + task)


def fails_once(task, session, context):
    """Fail the first attempt (leaving the file named in the task), succeed the next."""
    path = task.rsplit(" ", 1)[-1]
    if not os.path.exists(path):
        open(path, "w").close()
        raise RuntimeError("transient glitch")
    return "recovered"
