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
from typing import Any

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

    def __init__(self, pid: int, mission_id: str, token: int = 0) -> None:
        self.pid = pid
        self.mission_id = mission_id
        self.token = token  # its launch request's, unique per WarmStarter
        self.started = process_start_time(pid)
        self.returncode: int | None = None
        #: Whether the process said its mission's end is in the store (it exits next).
        self.end_stored = False
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


class _Server:
    """One fork server process: its request pipe (None once closed) and what the kernel
    waits for from it. Only the one that is current takes launches; an older one (idle,
    retiring) is only reaped and its missions' ends read."""

    def __init__(self, popen: subprocess.Popen[bytes], request_fd: int) -> None:
        self.popen = popen
        self.request_fd: int | None = request_fd
        self.ready = False
        self.answers: dict[int, _Pending] = {}
        self.by_pid: dict[int, WarmProcess] = {}
        self.by_token: dict[int, WarmProcess] = {}
        #: Tokens (never reused) of launches whose end was stored before the kernel read
        #: the server's answer to them.
        self.stored_early: set[int] = set()

    def take_request_fd(self) -> int | None:
        """The request pipe, to close (once: whoever takes it first)."""
        fd, self.request_fd = self.request_fd, None
        return fd


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
        on_end_stored: Callable[[WarmProcess], None] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.preload = preload
        self.idle_secs = idle_secs
        self._on_end = on_end
        self._on_end_stored = on_end_stored
        self._environment = environment
        self._lock = threading.Lock()
        #: The server that takes launches (starting or ready); None: none (off, or dead).
        self._server: _Server | None = None
        #: Every server still running, the current one and those retiring.
        self._servers: set[_Server] = set()
        self._tokens = itertools.count(1)
        #: Why warm workers are off for good (the server died or could not start).
        self._dead_reason: str | None = None
        self._warned = False
        self._closing = False
        #: Called with each message the kernel reads from a server, before it acts on it
        #: (tests hold a message here to force an interleaving).
        self.message_hook: Callable[[dict[str, Any]], None] | None = None

    # -- the server's life ----------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the server is up and takes missions."""
        server = self._server
        return server is not None and server.ready and server.request_fd is not None

    @property
    def server_pid(self) -> int | None:
        server = self._server
        return server.popen.pid if server is not None and server.popen.poll() is None else None

    def prepare(self) -> None:
        """Start the server if it is not running (returns at once: it starts meanwhile)."""
        with self._lock:
            self._start_if_off()

    def _start_if_off(self) -> None:
        if self._server is None and self._dead_reason is None and not self._closing:
            self._start()

    def _start(self) -> None:
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        done_r, done_w = os.pipe()  # the server's children write their pid: end stored
        try:
            popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mission_widgets.runtime.fork_server",
                    self.store_dir,
                    str(request_r),
                    str(answer_w),
                    str(done_w),
                    repr(float(self.idle_secs)),
                    *self.preload,
                ],
                pass_fds=(request_r, answer_w, done_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # never in the kernel's process group
                env=self._environment(),
            )
        except OSError as exc:
            for fd in (request_w, answer_r, done_r):
                os.close(fd)
            self._dead_reason = f"could not start ({exc})"
            return
        finally:
            for fd in (request_r, answer_w, done_w):  # the server's ends
                os.close(fd)
        server = self._server = _Server(popen, request_w)
        self._servers.add(server)
        threading.Thread(
            target=self._read_answers,
            args=(server, answer_r),
            name="mission-widgets-fork-server",
            daemon=True,
        ).start()
        threading.Thread(
            target=self._read_ends_stored,
            args=(server, done_r),
            name="mission-widgets-ends-stored",
            daemon=True,
        ).start()

    def _read_ends_stored(self, server: _Server, done_fd: int) -> None:
        """Tokens of the server's launches whose mission's end is in the store; the pipe
        ends when the server and all its children have closed it."""
        with os.fdopen(done_fd, "rb") as dones:
            for line in dones:
                self._end_stored(server, int(line))

    def _read_answers(self, server: _Server, answer_fd: int) -> None:
        """The server's answers: ready, pids of started missions, exit statuses, idle."""
        reason = None
        with os.fdopen(answer_fd, "rb") as answers:
            for line in answers:
                message = json.loads(line)
                if self.message_hook is not None:
                    self.message_hook(message)
                if "exit" in message:
                    self._ended(server, message["exit"], message["code"])
                elif "started" in message:
                    self._started(server, message["started"], message["pid"])
                elif "ready" in message:
                    with self._lock:
                        server.ready = True
                elif "error" in message:
                    reason = f"could not start: {message['error']}"
                elif "idle" in message:
                    reason = "idle"
                    self._retire(server)
        code = server.popen.wait()
        with self._lock:
            fd = server.take_request_fd()
            if fd is not None:
                os.close(fd)
            self._servers.discard(server)
            if self._server is server:  # it died while it took launches
                self._server = None
                if not self._closing:
                    self._dead_reason = reason or f"(pid {server.popen.pid}) exited (code {code})"
            orphans = list(server.by_pid.values())
            server.by_pid.clear()
            waiters = list(server.answers.values())
            server.answers.clear()
        for waiter in waiters:
            waiter.answered.set()  # a launch waiting for an answer gives up now
        if orphans:  # missions outlive the server: watch them by pid and start time
            threading.Thread(
                target=_watch_orphans, args=(orphans, self._on_end), daemon=True
            ).start()

    def _retire(self, server: _Server) -> None:
        """The server offers to exit (idle). From now on no launch goes to it (the next one
        starts a new server); closing its pipe tells it so. A launch sent before is in the
        pipe, ahead of the end of file: the server forks it first."""
        with self._lock:
            if self._server is server:
                self._server = None
            fd = server.take_request_fd()
            if fd is not None:
                os.close(fd)

    def _started(self, server: _Server, token: int, pid: int) -> None:
        with self._lock:
            waiter = server.answers.pop(token, None)
        if waiter is None:
            return
        process = WarmProcess(pid, waiter.mission_id, token)
        with self._lock:  # known before its exit can be read (the next lines of the pipe)
            server.by_pid[pid] = process
            server.by_token[token] = process
            stored = token in server.stored_early
            server.stored_early.discard(token)
        waiter.process = process
        waiter.answered.set()
        if stored:
            self._tell_end_stored(process)

    def _end_stored(self, server: _Server, token: int) -> None:
        with self._lock:
            process = server.by_token.get(token)
            if process is None:  # a quick mission: its pid is on its way in the answers
                server.stored_early.add(token)
                return
        self._tell_end_stored(process)

    def _tell_end_stored(self, process: WarmProcess) -> None:
        process.end_stored = True
        if self._on_end_stored is not None:
            self._on_end_stored(process)

    def _ended(self, server: _Server, pid: int, code: int | None) -> None:
        with self._lock:
            process = server.by_pid.pop(pid, None)
            if process is not None:
                server.by_token.pop(process.token, None)
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
            self._start_if_off()
            server = self._server
            if server is None or not server.ready or server.request_fd is None:
                return None
            token = next(self._tokens)
            waiter = server.answers[token] = _Pending(mission_id)
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
                    data = data[os.write(server.request_fd, data) :]
            except OSError as exc:
                server.answers.pop(token, None)
                self._give_up(server, f"stopped reading requests ({exc})")
                return None
        if not waiter.answered.wait(ANSWER_TIMEOUT_SECS) and waiter.process is None:
            with self._lock:
                server.answers.pop(token, None)
                self._give_up(server, f"did not answer within {ANSWER_TIMEOUT_SECS:g} s")
        if waiter.process is None:
            with self._lock:
                self._warn_if_dead()
        return waiter.process

    def _give_up(self, server: _Server, reason: str) -> None:
        """The server misbehaves: stop it; every later mission starts fresh (one warning)."""
        if self._server is server:
            self._server = None
        if self._dead_reason is None:
            self._dead_reason = reason
        try:
            os.killpg(server.popen.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self._warn_if_dead()

    def _warn_if_dead(self) -> None:
        if self._dead_reason is not None and not self._warned:
            self._warned = True
            warnings.warn(
                f"the warm-worker fork server {self._dead_reason}; missions start in a fresh "
                "interpreter from now on",
                RuntimeWarning,
                stacklevel=4,
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stop the servers (closing their pipes); missions they started keep running,
        except those whose end is stored already: they are about to exit and are waited
        for, so nothing of a finished mission outlives close()."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._closing = True
            self._server = None
            servers = list(self._servers)
            ending = [p for s in servers for p in s.by_pid.values() if p.end_stored]
        for process in ending:
            process.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for server in servers:
                fd = server.take_request_fd()
                if fd is not None:
                    os.close(fd)
        for server in servers:
            try:
                server.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                server.popen.kill()
                server.popen.wait()


def _watch_orphans(processes: list[WarmProcess], on_end: Callable[[WarmProcess], None]) -> None:
    while processes:
        for process in list(processes):
            if find_process(process.pid, process.started) is None:
                processes.remove(process)
                process.end(None)
                on_end(process)
        time.sleep(0.2)
