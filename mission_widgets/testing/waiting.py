"""Waiting on conditions and finding worker processes: for tests of missions (ours and yours).

``wait_for`` polls a condition with a deadline instead of sleeping and hoping;
``worker_processes`` finds the live workers of a store, to prove none is left behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psutil

WORKER_MODULE = "mission_widgets.worker"


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    what: str | None = None,
    *,
    interval: float = 0.05,
) -> Any:
    """Poll ``predicate()`` until it is truthy and return its value; AssertionError naming
    ``what`` (or the predicate) when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what or getattr(predicate, "__doc__", None) or repr(predicate)
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {name}")
        time.sleep(interval)


def is_alive(proc: psutil.Process) -> bool:
    """Whether ``proc`` (the very process, not a reuse of its pid) still runs."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def worker_processes(marker: str | os.PathLike) -> list[psutil.Process]:
    """Live (non-zombie) worker processes whose command line mentions ``marker`` (a store
    directory or a mission id)."""
    marker = str(marker)
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if WORKER_MODULE in cmdline and marker in cmdline:
            found.append(proc)
    return found
