"""Waiting on conditions and finding worker processes: for the tests.

``wait_for`` polls a condition with a deadline instead of sleeping and hoping;
``default_sigint`` and ``sigint_raises_keyboard_interrupt`` let a test interrupt a child or
itself even when the suite runs with SIGINT ignored;
``worker_processes`` finds the live workers of a store, and ``check_no_worker_left`` proves
none is left behind (the guard of the ``no_worker_left`` fixture).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
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


def wait_until_waiting(mission: Any, orch: Any = None, timeout: float = 60.0) -> str:
    """Wait until ``mission`` waits for a person and return the step it waits on: as its
    orchestrator ``orch`` reads it from the store (any backend, any process), or, with no
    ``orch``, as the Mission itself says while it runs in this process."""

    def step() -> str | None:
        return mission.waiting_on if orch is None else orch.waiting_on(mission.id)

    return wait_for(step, timeout, f"mission {mission.id} to ask a person")


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts with SIGINT: Ctrl-C reaches it as from
    a terminal even when this suite runs with SIGINT ignored (``nohup``, ``cmd &``), whose
    ignoring every child inherits (Python then never installs its KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def sigint_raises_keyboard_interrupt():
    """In this (main) thread, SIGINT raises KeyboardInterrupt while the block runs, however
    the suite was started; the handler before is put back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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


def kill_hard(procs: Iterable[psutil.Process]) -> None:
    """SIGKILL each process's group and the process itself (resumed first if stopped)."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.resume()
            proc.kill()


def check_no_worker_left(marker: str | os.PathLike, timeout: float = 10.0) -> None:
    """AssertionError when a worker whose command line mentions ``marker`` still runs after
    ``timeout`` seconds (a finished worker may still be exiting); stragglers are killed first,
    by pid, so they do not outlive the failure."""
    deadline = time.monotonic() + timeout
    stray = worker_processes(marker)
    while stray and time.monotonic() < deadline:
        time.sleep(0.05)
        stray = worker_processes(marker)  # again: a late start counts too
    if not stray:
        return
    described = []
    for proc in stray:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            described.append(f"{proc.pid}: {' '.join(proc.cmdline())}")
    kill_hard(stray)
    raise AssertionError(f"worker processes outlived the test: {described}")
