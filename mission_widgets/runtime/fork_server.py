"""The warm-worker fork server: a process that has imported the worker, forked per mission.

Started by the kernel (:mod:`.warm_start`) as ``python -m mission_widgets.runtime.fork_server
STORE_DIR REQUEST_FD REPLY_FD DONE_FD IDLE_SECS [MODULE ...]`` in a session of its own, never as a
fork of the kernel. It imports the worker's modules (and the ``preload`` modules), then,
single-threaded, waits for requests on a pipe. Each request (one JSON line: the worker's
argv, the kernel's environment, working directory and import path *as they are at launch*,
the log file) is answered by a ``fork()``: the child leaves for a session and process group
of its own, takes that environment, directory and path, points stdout/stderr at the log,
reseeds the random generators, takes the command line a fresh worker would have
(setproctitle) and runs the worker exactly as ``python -m mission_widgets.worker`` would.
The server replies with the child's pid and, when it is reaped, its exit status
(``os.waitstatus_to_exitcode``: negative for a signal, as Popen reports it). The child
itself writes the request's token to ``DONE_FD`` (a pipe the kernel reads) once its
mission's end is in the store: the kernel reads the end then, not after the process has
wound down and the server has reaped it.

It exits when the kernel closes the request pipe: close(), the kernel died, or the kernel
agreed to its idle exit. After ``IDLE_SECS`` without a request while no mission of its own
runs, the server does not just exit (a launch may be on its way): it says ``idle`` and goes
on serving until the kernel, which sends no launch to it from then on, closes the pipe;
every request written before that is served. Missions outlive it: they are in their own
sessions. Standard library only (setproctitle if installed), plus what it preloads.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


def _base_path() -> list[str]:
    """The server's import path without what came from its own start (its cwd, PYTHONPATH):
    a mission's path is its launch's cwd + PYTHONPATH + this, as a fresh interpreter's is."""
    own = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    own.add(os.path.abspath(os.getcwd()))
    return [p for p in sys.path[1:] if p and os.path.abspath(p) not in own]


def _lines(fd: int, pending: bytearray) -> list[bytes] | None:
    """The complete lines readable from ``fd`` now (``pending`` keeps a partial one); None
    at end of file."""
    chunk = os.read(fd, 65536)
    if not chunk:
        return None
    pending += chunk
    lines = bytes(pending).split(b"\n")
    pending[:] = lines.pop()
    return lines


def _child(
    request: dict[str, Any], base_path: list[str], close: tuple[int, ...], done_fd: int
) -> None:
    """In the forked child: become the worker a fresh interpreter would have been; the
    request's token goes to ``done_fd`` once its mission's end is stored. Never returns
    (os._exit)."""
    code = 70
    try:
        os.setsid()  # own session and process group: survives the kernel, cancel kills it
        signal.set_wakeup_fd(-1)
        # As a fresh interpreter has them (SIGPIPE stays ignored, as Python sets it: a
        # write to a closed pipe raises BrokenPipeError, it does not kill the mission).
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in close:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        # Unbuffered text streams on the log (PYTHONUNBUFFERED for a fresh worker).
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = list(dict.fromkeys([request["cwd"], *extra, *base_path]))
        importlib.invalidate_caches()  # modules written after the server started are found
        _reseed()
        _retitle(request["argv"])
        from . import worker

        def end_stored() -> None:
            os.write(done_fd, b"%d\n" % request["token"])  # one atomic write (< PIPE_BUF)

        sys.argv = [worker.__file__, *request["argv"]]
        worker.main(request["argv"], on_end_stored=end_stored)  # exits with os._exit(code)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # the log says why; the kernel sees the exit code
        try:
            print(f"[mission_widgets] warm worker failed: {exc!r}", file=sys.stderr, flush=True)
        except Exception:
            pass
    os._exit(code)


def _retitle(argv: list[str]) -> None:
    """The command line a fresh worker would have (ps, psutil and people find the mission
    by its store and id); without setproctitle the server's stays."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    setproctitle(" ".join([sys.executable, "-m", "mission_widgets.worker", *argv]))


def _reseed() -> None:
    """Forked children would share the server's random state: give each its own (random
    reseeds itself after a fork; numpy's global generator does not)."""
    import random

    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def _preload(preload: list[str]) -> None:
    import random  # noqa: F401 - every child reseeds it (_reseed): not imported per mission

    import cloudpickle  # noqa: F401 - missions are cloudpickled: unpickling needs it

    from . import worker  # noqa: F401 - what every mission needs, imported once here

    try:
        from setproctitle import getproctitle, setproctitle
    except ImportError:
        pass
    else:  # set up now, while argv and environ are as the interpreter found them
        setproctitle(getproctitle())

    for name in preload:
        importlib.import_module(name)


def serve(
    request_fd: int, reply_fd: int, done_fd: int, idle_secs: float, preload: list[str]
) -> int:
    os.set_inheritable(done_fd, False)  # the children keep it; what they exec does not
    try:
        _preload(preload)
    except BaseException as exc:  # the kernel says it in its one warning
        _send(reply_fd, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    base_path = _base_path()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select() through wake_w
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    close_in_child = (request_fd, reply_fd, wake_r, wake_w)
    children: set[int] = set()
    requests = bytearray()
    last_busy = time.monotonic()
    said_idle = False
    _send(reply_fd, {"ready": os.getpid()})
    while True:
        no_deadline = bool(children) or said_idle
        timeout = None if no_deadline else max(0.0, last_busy + idle_secs - time.monotonic())
        readable, _, _ = select.select([request_fd, wake_r], [], [], timeout)
        if wake_r in readable:
            os.read(wake_r, 512)
        while children:  # reap every child that ended
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            _send(reply_fd, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})
            last_busy = time.monotonic()
        if request_fd in readable:
            lines = _lines(request_fd, requests)
            if lines is None:
                return 0  # the kernel closed the pipe: close(), it is gone, or idle agreed
            for line in lines:
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request, base_path, close_in_child, done_fd)
                children.add(pid)
                _send(reply_fd, {"started": request["token"], "pid": pid})
            last_busy = time.monotonic()
        if not no_deadline and not readable and time.monotonic() >= last_busy + idle_secs:
            # Not an exit: a launch may be in the pipe already. The kernel sends no more
            # and closes the pipe; what it sent before is served above, then EOF ends us.
            _send(reply_fd, {"idle": True})
            said_idle = True


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # args[0] is the store it serves: there to be seen in ps, not used.
    request_fd, reply_fd, done_fd = int(args[1]), int(args[2]), int(args[3])
    try:
        code = serve(request_fd, reply_fd, done_fd, float(args[4]), args[5:])
    except BrokenPipeError:
        code = 0  # the kernel went away while we replied
    sys.exit(code)


if __name__ == "__main__":
    main()
