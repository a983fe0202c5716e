"""The subprocess backend (the default): a worker process per mission.

Each mission runs in a process of its own, in its own session, so it survives kernel
interrupts and restarts; any process of this machine can judge it (pid and start time in the
store row) and stop it. With ``warm=True`` (the default) the process is forked by a warm
fork server that has the interpreter and the worker (plus ``preload=[...]`` modules)
imported already (runtime/warm_start.py); otherwise, and whenever that server is not there,
it is a fresh ``sys.executable -m mission_widgets.worker``. Either way the mission sees the
kernel's environment, working directory and import path as they are at its launch.

Options: ``warm`` (bool; default True unless ``$MISSION_WIDGETS_WARM=0``), ``preload``
(module names the warm server imports once, e.g. ``["numpy"]``), ``warm_idle_secs`` (how
long an idle server waits before it exits; default 60).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from .backend import ExitCallback, ProcessBackend, Row
from .payload import build_payload, dumps_payload, write_payload
from .processes import describe_exit, process_start_time
from .store import open_private
from .warm_start import DEFAULT_IDLE_SECS, WarmProcess, WarmStarter, warm_by_default
from .worker import END_IN_LOG_EXIT_CODE

if TYPE_CHECKING:
    from ..core.mission import Mission
    from .store import MissionStore


class _PopenProcess:
    """A fresh worker interpreter, seen through what the backend asks of any worker."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.pid = proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def wait(self, timeout: float | None = None) -> bool:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True


class SubprocessBackend(ProcessBackend):
    """Runs each mission in a process of its own (own session): forked by a warm server or
    a fresh ``sys.executable -m mission_widgets.worker``."""

    name = "subprocess"
    has_heartbeat = True

    def __init__(
        self,
        store: MissionStore,
        on_exit: ExitCallback | None = None,
        *,
        warm: bool | None = None,
        preload: list[str] | tuple[str, ...] = (),
        warm_idle_secs: float = DEFAULT_IDLE_SECS,
        **options: Any,
    ) -> None:
        super().__init__(store, on_exit, **options)
        self._procs: dict[str, _PopenProcess | WarmProcess] = {}
        #: mission id -> digest of the payload check() wrote: launch() writes it only if the
        #: mission changed since (a model given at run_all), not twice per mission.
        self._written: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.warm = warm_by_default() if warm is None else _checked_warm(warm)
        self.preload = _checked_preload(preload)
        if isinstance(warm_idle_secs, bool) or not isinstance(warm_idle_secs, int | float):
            raise TypeError(f"warm_idle_secs must be a number, got {warm_idle_secs!r}")
        if not warm_idle_secs > 0:
            raise ValueError(f"warm_idle_secs must be positive, got {warm_idle_secs!r}")
        self._starter: WarmStarter | None = None
        if self.warm:
            self._starter = WarmStarter(
                str(store.root),
                preload=self.preload,
                idle_secs=float(warm_idle_secs),
                on_end=self._warm_ended,
                on_end_stored=self._warm_end_stored,
                environment=worker_environment,
            )

    @property
    def warm_server_pid(self) -> int | None:
        """The pid of the warm fork server while it runs (None otherwise)."""
        return self._starter.server_pid if self._starter is not None else None

    @property
    def warm_ready(self) -> bool:
        """Whether missions are started by the warm fork server now (else fresh ones)."""
        return self._starter is not None and self._starter.ready

    def check(self, mission: Mission) -> None:
        # Written now, so a queue left by a kernel that exits can be adopted by the next one.
        payload = self._payload(mission)
        path = self.store.mission_file(mission.id)
        write_payload(path, payload)
        with self._lock:
            self._written[mission.id] = _digest(payload)
        if self._starter is not None:
            self._starter.prepare()  # a mission is coming: have the server ready for it

    def _payload(self, mission: Mission) -> bytes:
        checkpoint = str(self.store.checkpoint_file(mission.id))
        return dumps_payload(build_payload(mission, checkpoint))

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        payload = self._payload(mission)
        path = self.store.mission_file(mission.id)
        with self._lock:
            written = self._written.pop(mission.id, None)
        if written != _digest(payload) or not path.exists():
            write_payload(path, payload)
        args = [str(self.store.root), mission.id, repr(float(heartbeat_secs))]
        env = worker_environment()  # the kernel's, as it is now
        from ..core.tracecontext import traceparent_of

        env["TRACEPARENT"] = traceparent_of(mission.id)  # SDK spans nest under the mission
        log = str(self.store.log_file(mission.id))
        process: _PopenProcess | WarmProcess | None = None
        if self._starter is not None:
            process = self._starter.launch(mission.id, args, log, env)
        if process is None:
            process = self._popen(args, log, env)
        with self._lock:
            self._procs[mission.id] = process
        started = process.started if isinstance(process, WarmProcess) else None
        self.store.set_process(mission.id, process.pid, started or process_start_time(process.pid))
        if isinstance(process, _PopenProcess):
            threading.Thread(
                target=self._reap,
                args=(mission.id, process),
                name=f"reap-{mission.id}",
                daemon=True,
            ).start()
        return process.pid

    def _popen(self, args: list[str], log: str, env: dict[str, str]) -> _PopenProcess:
        log_fd = open_private(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mission_widgets.worker", *args],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: survives kernel interrupts
                close_fds=True,
                env=env,
            )
        finally:
            os.close(log_fd)
        return _PopenProcess(proc)

    def _reap(self, mission_id: str, process: _PopenProcess) -> None:
        process.proc.wait()
        self.on_exit(mission_id)

    def _warm_end_stored(self, process: WarmProcess) -> None:
        self.on_exit(process.mission_id)  # its end can be read now; the exit follows

    def _warm_ended(self, process: WarmProcess) -> None:
        if not process.end_stored:  # else the orchestrator was woken for it already
            self.on_exit(process.mission_id)

    def release(self, mission_id: str) -> None:
        with self._lock:
            self._procs.pop(mission_id, None)
            self._written.pop(mission_id, None)

    def shutdown(self) -> None:
        if self._starter is not None:
            self._starter.close()

    def _proc(self, row: Row) -> _PopenProcess | WarmProcess | None:
        with self._lock:
            return self._procs.get(row["id"])

    def is_alive(self, row: Row) -> bool | None:
        proc = self._proc(row)
        if proc is not None:
            return not proc.finished()
        return super().is_alive(row)

    def exit_reason(self, row: Row) -> str:
        proc = self._proc(row)
        if proc is None:
            return (
                f"worker process {row.get('pid')} is gone without a final event "
                "(started by another process, so its exit status is unknown)"
            )
        if proc.returncode == END_IN_LOG_EXIT_CODE:
            return (
                f"worker process {proc.pid} could not write the mission's end to the store; "
                f"it is in the log {self.store.log_file(row['id'])}"
            )
        return describe_exit(proc.returncode)

    def stop(self, row: Row, grace: float) -> None:
        super().stop(row, grace)
        proc = self._proc(row)
        if proc is not None:
            proc.wait(timeout=grace + 5)  # SIGKILL was sent after the grace period


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


def _checked_warm(warm: object) -> bool:
    if not isinstance(warm, bool):
        raise TypeError(f"warm must be True or False, got {warm!r}")
    return warm


def _checked_preload(preload: object) -> tuple[str, ...]:
    """Module names, each findable now (a typo is named at construction, not in a warning)."""
    import importlib.util

    if isinstance(preload, str) or not isinstance(preload, list | tuple):
        raise TypeError(f"preload must be a list of module names, got {preload!r}")
    for name in preload:
        if not isinstance(name, str) or not name:
            raise TypeError(f"preload must hold module names (str), got {name!r}")
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ValueError(f"preload: no module named {name!r} can be imported")
    return tuple(preload)


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
