"""Where missions execute. One small interface, one class per place:

* :class:`ThreadBackend` -- a thread in this process (quick use, tests, unpicklable missions);
* :class:`SubprocessBackend` -- a worker process per mission, in its own session, surviving
  the kernel (the default);
* the Dask backend (``runtime/dask_kernel.py``) -- a worker of a dask.distributed cluster.

Every backend feeds the same SQLite store with the mission's events, so the orchestrator's
poll, reconcile and status code never asks which backend ran a mission.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..core.errors import describe_error
from ..core.mission import Mission
from .payload import build_payload, dumps_payload, write_payload
from .processes import describe_exit, find_process, kill_process_tree, process_start_time
from .store import MissionStore, open_private
from .worker import StoreSink

ExitCallback = Callable[[str], None]


class Backend:
    """Base class: backends fill in ``launch``, ``alive``, ``terminate`` and ``exit_reason``."""

    name = "base"
    #: Whether missions on this backend beat a heartbeat (stall detection by heartbeat).
    has_heartbeat = False
    #: Whether the orchestrator's Mission object is the running one (no mirroring needed).
    runs_in_kernel = False

    def __init__(self, store: MissionStore, on_exit: ExitCallback) -> None:
        self.store = store
        self.on_exit = on_exit

    def check(self, mission: Mission) -> None:
        """Raise at submit time if ``mission`` cannot run on this backend."""

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        """Start ``mission``; return the pid that runs it (if any)."""
        raise NotImplementedError

    def alive(self, mission_id: str, row: dict[str, Any]) -> bool:
        """Whether the mission still has something executing it."""
        return find_process(row.get("pid"), row.get("pid_started")) is not None

    def exit_reason(self, mission_id: str, row: dict[str, Any]) -> str:
        return (
            f"worker process {row.get('pid')} is gone without a final event "
            "(started by another kernel, so its exit status is unknown)"
        )

    def terminate(self, mission_id: str, row: dict[str, Any], grace: float) -> None:
        kill_process_tree(row.get("pid"), row.get("pid_started"), grace)

    def release(self, mission_id: str) -> None:
        """Forget a mission that has ended (its process handle, thread, ...)."""

    def shutdown(self) -> None:
        """Release resources (not the missions: they keep running)."""


class ThreadBackend(Backend):
    """Runs each mission on a daemon thread of this process.

    Cancel is cooperative: no new step or retry starts, but an attempt in progress cannot be
    killed (a thread cannot be); timeouts stop pure-Python code only (see core.timeouts).
    """

    name = "thread"
    runs_in_kernel = True

    def __init__(self, store: MissionStore, on_exit: ExitCallback) -> None:
        super().__init__(store, on_exit)
        self._threads: dict[str, threading.Thread] = {}
        self._missions: dict[str, Mission] = {}

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        sink = StoreSink(self.store, mission)
        mission.add_event_sink(sink)
        self.store.set_process(mission.id, os.getpid(), process_start_time(os.getpid()))
        thread = threading.Thread(
            target=self._run, args=(mission, sink), name=f"mission-{mission.id}", daemon=True
        )
        self._threads[mission.id] = thread
        self._missions[mission.id] = mission
        thread.start()
        return os.getpid()

    def _run(self, mission: Mission, sink: StoreSink) -> None:
        try:
            mission.run()
        except Exception as exc:
            self.store.finish_if_unfinished(mission.id, "failed", describe_error(exc))
        finally:
            mission.remove_event_sink(sink)
            self.store.close()
            self.on_exit(mission.id)

    def release(self, mission_id: str) -> None:
        self._threads.pop(mission_id, None)
        self._missions.pop(mission_id, None)

    def alive(self, mission_id: str, row: dict[str, Any]) -> bool:
        thread = self._threads.get(mission_id)
        if thread is not None:
            return thread.is_alive()
        return super().alive(mission_id, row)  # another kernel's thread: is that kernel alive?

    def exit_reason(self, mission_id: str, row: dict[str, Any]) -> str:
        return f"the kernel (pid {row.get('pid')}) that ran this mission in a thread has exited"

    def terminate(self, mission_id: str, row: dict[str, Any], grace: float) -> None:
        mission = self._missions.get(mission_id)
        if mission is not None:
            mission.request_cancel()
            self._threads[mission_id].join(grace)


class SubprocessBackend(Backend):
    """Runs each mission in ``sys.executable -m mission_widgets.worker`` (own session)."""

    name = "subprocess"
    has_heartbeat = True

    def __init__(self, store: MissionStore, on_exit: ExitCallback) -> None:
        super().__init__(store, on_exit)
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def check(self, mission: Mission) -> None:
        # Written now, so a queue left by a kernel that exits can be adopted by the next one.
        write_payload(self.store.mission_file(mission.id), dumps_payload(build_payload(mission)))

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        write_payload(self.store.mission_file(mission.id), dumps_payload(build_payload(mission)))
        log_fd = open_private(
            self.store.log_file(mission.id), os.O_WRONLY | os.O_CREAT | os.O_APPEND
        )
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mission_widgets.worker",
                    str(self.store.root),
                    mission.id,
                    repr(float(heartbeat_secs)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: survives kernel interrupts
                close_fds=True,
                env=worker_environment(),
            )
        finally:
            os.close(log_fd)
        self.store.set_process(mission.id, proc.pid, process_start_time(proc.pid))
        with self._lock:
            self._procs[mission.id] = proc
        threading.Thread(
            target=self._reap, args=(mission.id, proc), name=f"reap-{mission.id}", daemon=True
        ).start()
        return proc.pid

    def _reap(self, mission_id: str, proc: subprocess.Popen) -> None:
        proc.wait()
        self.on_exit(mission_id)

    def release(self, mission_id: str) -> None:
        with self._lock:
            self._procs.pop(mission_id, None)

    def alive(self, mission_id: str, row: dict[str, Any]) -> bool:
        with self._lock:
            proc = self._procs.get(mission_id)
        if proc is not None:
            return proc.poll() is None
        return super().alive(mission_id, row)

    def exit_reason(self, mission_id: str, row: dict[str, Any]) -> str:
        with self._lock:
            proc = self._procs.get(mission_id)
        if proc is None:
            return super().exit_reason(mission_id, row)
        return describe_exit(proc.returncode)

    def terminate(self, mission_id: str, row: dict[str, Any], grace: float) -> None:
        super().terminate(mission_id, row, grace)
        with self._lock:
            proc = self._procs.get(mission_id)
        if proc is not None:
            try:
                proc.wait(timeout=grace + 5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass


def worker_environment() -> dict[str, str]:
    """The kernel's environment, plus its import path so pickled references resolve."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # the log file shows output as it happens
    prefixes = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    extra = [
        path
        for path in sys.path
        if path and os.path.isdir(path) and not os.path.abspath(path).startswith(prefixes)
    ]
    if env.get("PYTHONPATH"):
        extra.append(env["PYTHONPATH"])
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(extra))
    return env


BACKENDS: dict[str, type[Backend]] = {
    ThreadBackend.name: ThreadBackend,
    SubprocessBackend.name: SubprocessBackend,
}


def make_backend(spec: str | Backend, store: MissionStore, on_exit: ExitCallback, **options):
    if isinstance(spec, Backend):
        return spec
    if spec == "dask":
        from .dask_kernel import DaskBackend

        return DaskBackend(store, on_exit, **options)
    try:
        cls = BACKENDS[spec]
    except (KeyError, TypeError):
        known = ", ".join([*BACKENDS, "dask"])
        raise ValueError(f"unknown backend {spec!r}; choose one of: {known}") from None
    if options:
        raise TypeError(f"backend {spec!r} takes no options, got {', '.join(options)}")
    return cls(store, on_exit)
