"""Warm workers, the kernel's side: starts missions through a fork server (fork_server.py).

Why a fork server and not a pool of standby workers: a standby worker has to be told the
kernel's environment, directory and import path when it is handed a mission anyway, and a
pool of N idle interpreters costs N x their memory and N start-ups after every idle period;
one single-threaded server that has imported the worker forks a fresh, private process per
mission in a few milliseconds, whatever the concurrency, and a forked child is as separate
as a new interpreter (own pid, session and process group; the server never runs a mission
and never touches the store). The kernel is never forked: the server is a fresh
``sys.executable`` started in a session of its own.

:class:`WarmStarter` belongs to one SubprocessBackend (so to one orchestrator and its store).
It starts the server on first need, in the background, and :meth:`WarmStarter.launch`
answers None until the server is ready -- that mission starts in a fresh interpreter, as
every mission does once the server has died or could not start (said by one warning, at the
next launch). The server exits after ``idle_secs`` without work (the next mission starts it
again), when :meth:`WarmStarter.close` closes its pipe, and when the kernel dies.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable

from .processes import find_process, process_start_time

#: Seconds an idle fork server (no mission of its own running, no request) waits before it
#: exits; the next mission starts it again.
DEFAULT_IDLE_SECS = 60.0
#: ``MISSION_WIDGETS_WARM=0`` turns warm workers off (every mission a fresh interpreter).
WARM_ENV = "MISSION_WIDGETS_WARM"
#: How long a launch waits for the server's answer before it gives up on the server.
ANSWER_TIMEOUT_SECS = 10.0


def warm_by_default() -> bool:
    return os.environ.get(WARM_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


class WarmProcess:
    """A mission process forked by the server: what the backend asks of a Popen (pid,
    returncode, finished, wait). Its exit status comes from the server; if the server is
    gone first, the process is watched by pid and start time (exit status unknown)."""

    def __init__(self, pid: int, mission_id: str) -> None:
        self.pid = pid
        self.mission_id = mission_id
        self.started = process_start_time(pid)
        self.returncode: int | None = None
        self._ended = threading.Event()

    def finished(self) -> bool:
        return self._ended.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    def end(self, returncode: int | None) -> None:
        self.returncode = returncode
        self._ended.set()


class _Pending:
    """A launch waiting for the server's answer (the pid it forked)."""

    def __init__(self, mission_id: str) -> None:
        self.mission_id = mission_id
        self.answered = threading.Event()
        self.process: WarmProcess | None = None


class WarmStarter:
    """One fork server for one backend: start it, launch missions through it, close it."""

    def __init__(
        self,
        store_dir: str,
        *,
        preload: tuple[str, ...] = (),
        idle_secs: float = DEFAULT_IDLE_SECS,
        on_end: Callable[[WarmProcess], None],
        environment: Callable[[], dict[str, str]],
    ) -> None:
        self.store_dir = store_dir
        self.preload = preload
        self.idle_secs = idle_secs
        self._on_end = on_end
        self._environment = environment
        self._lock = threading.Lock()
        self._state = "off"  # off -> starting -> ready -> off (idle/closed) | dead
        self._server: subprocess.Popen[bytes] | None = None
        self._request_fd: int | None = None
        self._answers: dict[int, _Pending] = {}
        self._by_pid: dict[int, WarmProcess] = {}
        self._tokens = itertools.count(1)
        self._dead_reason: str | None = None
        self._warned = False
        self._closing = False

    # -- the server's life ----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the server is up and takes missions."""
        return self._state == "ready"

    @property
    def server_pid(self) -> int | None:
        server = self._server
        return server.pid if server is not None and server.poll() is None else None

    def prepare(self) -> None:
        """Start the server if it is not running (returns at once: it starts meanwhile)."""
        with self._lock:
            if self._state == "off" and not self._closing:
                self._start()

    def _start(self) -> None:
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        try:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mission_widgets.runtime.fork_server",
                    self.store_dir,
                    str(request_r),
                    str(answer_w),
                    repr(float(self.idle_secs)),
                    *self.preload,
                ],
                pass_fds=(request_r, answer_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # never in the kernel's process group
                env=self._environment(),
            )
        except OSError as exc:
            for fd in (request_w, answer_r):
                os.close(fd)
            self._state, self._dead_reason = "dead", f"could not start ({exc})"
            return
        finally:
            os.close(request_r)  # the server's ends
            os.close(answer_w)
        self._server, self._request_fd, self._state = server, request_w, "starting"
        threading.Thread(
            target=self._read_answers,
            args=(server, answer_r, request_w),
            name="mission-widgets-fork-server",
            daemon=True,
        ).start()

    def _read_answers(
        self, server: subprocess.Popen[bytes], answer_fd: int, request_fd: int
    ) -> None:
        """The server's answers: ready, pids of started missions, exit statuses, idle."""
        reason = None
        with os.fdopen(answer_fd, "rb") as answers:
            for line in answers:
                message = json.loads(line)
                if "exit" in message:
                    self._ended(message["exit"], message["code"])
                elif "started" in message:
                    with self._lock:
                        waiter = self._answers.pop(message["started"], None)
                    if waiter is not None:
                        # Known before its exit can be read (the next lines of this loop).
                        waiter.process = WarmProcess(message["pid"], waiter.mission_id)
                        with self._lock:
                            self._by_pid[waiter.process.pid] = waiter.process
                        waiter.answered.set()
                elif "ready" in message:
                    with self._lock:
                        if self._server is server and self._state == "starting":
                            self._state = "ready"
                elif "error" in message:
                    reason = f"could not start: {message['error']}"
                elif "idle" in message:
                    reason = "idle"
        code = server.wait()
        owned = False  # the request pipe is closed once, by whoever takes it from self
        with self._lock:
            if self._request_fd == request_fd:
                self._request_fd, owned = None, True
            if self._server is server:
                self._server = None
                if reason == "idle" or self._closing:
                    self._state = "off"
                else:
                    self._state = "dead"
                    self._dead_reason = reason or f"(pid {server.pid}) exited (code {code})"
            orphans = list(self._by_pid.values())
            self._by_pid.clear()
            for waiter in self._answers.values():
                waiter.answered.set()  # a launch waiting for an answer gives up now
            self._answers.clear()
        if owned:
            os.close(request_fd)
        if orphans:  # missions outlive the server: watch them by pid and start time
            threading.Thread(
                target=_watch_orphans, args=(orphans, self._on_end), daemon=True
            ).start()

    def _ended(self, pid: int, code: int | None) -> None:
        with self._lock:
            process = self._by_pid.pop(pid, None)
        if process is not None:
            process.end(code)
            self._on_end(process)

    # -- launching --------------------------------------------------------------------------

    def launch(
        self, mission_id: str, argv: list[str], log_path: str, env: dict[str, str]
    ) -> WarmProcess | None:
        """Fork a worker for ``argv`` (the worker's arguments) with ``env`` and the current
        directory; None when the server is not ready (the caller starts a fresh one)."""
        with self._lock:
            self._warn_if_dead()
            if self._state == "off" and not self._closing:
                self._start()
            if self._state != "ready" or self._request_fd is None:
                return None
            token = next(self._tokens)
            waiter = self._answers[token] = _Pending(mission_id)
            request = {
                "token": token,
                "argv": argv,
                "env": env,
                "cwd": os.getcwd(),
                "log": log_path,
            }
            data = (json.dumps(request) + "\n").encode()
            try:
                while data:
                    data = data[os.write(self._request_fd, data) :]
            except OSError as exc:
                self._answers.pop(token, None)
                self._give_up(f"stopped reading requests ({exc})")
                return None
        if not waiter.answered.wait(ANSWER_TIMEOUT_SECS) and waiter.process is None:
            with self._lock:
                self._answers.pop(token, None)
                self._give_up(f"did not answer within {ANSWER_TIMEOUT_SECS:g} s")
        if waiter.process is None:
            with self._lock:
                self._warn_if_dead()
        return waiter.process

    def _give_up(self, reason: str) -> None:
        """The server misbehaves: stop it; every later mission starts fresh (one warning)."""
        server = self._server
        self._state, self._dead_reason = "dead", reason
        if server is not None:
            try:
                os.killpg(server.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
        self._warn_if_dead()

    def _warn_if_dead(self) -> None:
        if self._state == "dead" and not self._warned:
            self._warned = True
            warnings.warn(
                f"the warm-worker fork server {self._dead_reason}; missions start in a fresh "
                "interpreter from now on",
                RuntimeWarning,
                stacklevel=4,
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the server (closing its pipe); missions it started keep running."""
        with self._lock:
            self._closing = True
            server, request_fd = self._server, self._request_fd
            self._request_fd = None
        if request_fd is not None:
            try:
                os.close(request_fd)
            except OSError:
                pass
        if server is not None:
            try:
                server.wait(timeout)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _watch_orphans(processes: list[WarmProcess], on_end: Callable[[WarmProcess], None]) -> None:
    while processes:
        for process in list(processes):
            if find_process(process.pid, process.started) is None:
                processes.remove(process)
                process.end(None)
                on_end(process)
        time.sleep(0.2)
