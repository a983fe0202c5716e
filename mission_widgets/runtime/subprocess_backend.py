"""The subprocess backend (the default): a worker process per mission.

Each mission runs in ``sys.executable -m mission_widgets.worker`` in its own session, so it
survives kernel interrupts and restarts; any process of this machine can judge it (pid and
start time in the store row) and stop it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from .backend import ExitCallback, ProcessBackend, Row
from .payload import build_payload, dumps_payload, write_payload
from .processes import describe_exit, process_start_time
from .store import open_private
from .worker import END_IN_LOG_EXIT_CODE

if TYPE_CHECKING:
    from ..core.mission import Mission
    from .store import MissionStore


class SubprocessBackend(ProcessBackend):
    """Runs each mission in ``sys.executable -m mission_widgets.worker`` (own session)."""

    name = "subprocess"
    has_heartbeat = True

    def __init__(
        self, store: MissionStore, on_exit: ExitCallback | None = None, **options: Any
    ) -> None:
        super().__init__(store, on_exit, **options)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def check(self, mission: Mission) -> None:
        # Written now, so a queue left by a kernel that exits can be adopted by the next one.
        write_payload(self.store.mission_file(mission.id), self._payload(mission))

    def _payload(self, mission: Mission) -> bytes:
        checkpoint = str(self.store.checkpoint_file(mission.id))
        return dumps_payload(build_payload(mission, checkpoint))

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        write_payload(self.store.mission_file(mission.id), self._payload(mission))
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
        with self._lock:
            self._procs[mission.id] = proc
        self.store.set_process(mission.id, proc.pid, process_start_time(proc.pid))
        threading.Thread(
            target=self._reap, args=(mission.id, proc), name=f"reap-{mission.id}", daemon=True
        ).start()
        return proc.pid

    def _reap(self, mission_id: str, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        self.on_exit(mission_id)

    def release(self, mission_id: str) -> None:
        with self._lock:
            self._procs.pop(mission_id, None)

    def _proc(self, row: Row) -> subprocess.Popen[bytes] | None:
        with self._lock:
            return self._procs.get(row["id"])

    def is_alive(self, row: Row) -> bool | None:
        proc = self._proc(row)
        if proc is not None:
            return proc.poll() is None
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
