"""Process bookkeeping shared by every backend that runs missions in OS processes.

A process is identified by pid *and* start time (psutil), so a recycled pid is never
mistaken for our worker.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable

import psutil

#: Start times closer than this are the same process (psutil rounds differently by OS).
START_TIME_TOLERANCE = 0.05


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def find_process(pid: int | None, started: float | None) -> psutil.Process | None:
    """The live (non-zombie) process with this pid and start time, or None."""
    if not pid:
        return None
    try:
        proc = psutil.Process(int(pid))
        if started is not None and abs(proc.create_time() - float(started)) > START_TIME_TOLERANCE:
            return None  # the pid was reused by another process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def process_alive(pid: int | None, started: float | None) -> bool:
    return find_process(pid, started) is not None


def owner_token() -> str:
    """``"pid:start_time"`` of this process: who queued a mission, robust to pid reuse."""
    pid = os.getpid()
    return f"{pid}:{process_start_time(pid)}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by an :func:`owner_token` still runs."""
    if not owner:
        return False
    # "pid:start_time", optionally ":instance" (one owner per orchestrator of a process).
    pid, _, rest = owner.partition(":")
    started = rest.partition(":")[0]
    try:
        return process_alive(int(pid), float(started) if started not in ("", "None") else None)
    except ValueError:
        return False


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "worker process exited unexpectedly (exit status unknown)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"worker process exited unexpectedly (signal {-returncode}, {name})"
    return f"worker process exited unexpectedly (exit code {returncode})"


def group_members(pgid: int) -> list[psutil.Process]:
    """Live processes whose process group is ``pgid`` (zombies excluded)."""
    members = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return members


def _signal_all(pgid: int, procs: Iterable[psutil.Process], sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for proc in procs:
        try:
            proc.send_signal(sig)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass


def kill_process_tree(pid: int, started: float | None, grace: float) -> None:
    """SIGTERM the process group led by ``pid`` (and descendants that left it), then SIGKILL.

    Workers run with ``start_new_session=True``, so their pgid is their pid.
    """
    root = find_process(pid, started)
    if root is None:
        return
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = [root]
    _signal_all(pid, procs, signal.SIGTERM)
    _signal_all(pid, procs, signal.SIGCONT)  # a stopped process only acts on TERM once resumed
    alive = _wait_gone(procs, grace)
    if alive or group_members(pid):
        _signal_all(pid, alive, signal.SIGKILL)
        _wait_gone(alive, 5)


def _still_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited and return those still running after ``timeout``.

    A zombie has exited. (psutil.wait_procs waits for an orphan's zombie to be reaped, which
    a container's init may never do, so every cancel would last the whole grace period.)
    """
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while True:
        alive = [proc for proc in alive if _still_running(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)
