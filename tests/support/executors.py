"""Executors and models for missions that run in worker processes.

They live at module level so cloudpickle sends them by reference: a worker imports this
module through the PYTHONPATH the runtime hands it (the kernel's sys.path). Coordination
with the test goes through files, the one thing a test and a worker process both see.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from mission_widgets.core.events import emit_event, report_progress

#: Longest a gated executor waits for its gate (a test that forgets a gate still ends).
GATE_TIMEOUT = 60.0


def touch(path: str | os.PathLike, text: str = "") -> None:
    """Create ``path`` atomically (a reader never sees it half written)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        # A device such as os.devnull: replacing it would put a regular file at /dev/null.
        path.write_text(text)
        return
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def wait_for_path(path: str | os.PathLike, timeout: float = GATE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {path} did not open within {timeout} s")
        time.sleep(0.02)


def noop(task, session, context):
    return None


def echo(task, session, context):
    return f"did: {task}"


class EchoModel:
    """A model (``.generate(prompt) -> str``) that answers without any network."""

    label = "echo-model"

    def generate(self, prompt: str) -> str:
        return "model answer"


class Touch:
    """Creates ``path``; returns ``result``."""

    def __init__(self, path, result="touched"):
        self.path, self.result = str(path), result

    def __call__(self, task, session, context):
        touch(self.path)
        return self.result


class Fail:
    """Always raises RuntimeError(message)."""

    def __init__(self, message="boom"):
        self.message = message

    def __call__(self, task, session, context):
        raise RuntimeError(self.message)


class FailThenGate:
    """Raises RuntimeError(message): at once on the first attempt (it writes ``gate`` +
    ".first" to know), on every later attempt only once ``gate`` exists."""

    def __init__(self, gate, message="boom"):
        self.gate, self.message = str(gate), message

    def __call__(self, task, session, context):
        first = self.gate + ".first"
        if os.path.exists(first):
            wait_for_path(self.gate)
        else:
            touch(first)
        raise RuntimeError(self.message)


class ReadMemory:
    """Returns the session memory under ``key``."""

    def __init__(self, key):
        self.key = key

    def __call__(self, task, session, context):
        return session.get_memory(self.key)


class Gated:
    """Writes ``started`` (if given), then waits until every gate exists; returns ``result``.

    ``gate`` is a path or a list of paths; past ``timeout`` seconds the attempt fails.
    """

    def __init__(self, gate, started=None, result="released", timeout=GATE_TIMEOUT):
        gates = gate if isinstance(gate, list | tuple) else [gate]
        self.gates = [str(g) for g in gates]
        self.started = None if started is None else str(started)
        self.result, self.timeout = result, timeout

    def __call__(self, task, session, context):
        if self.started:
            touch(self.started, str(os.getpid()))
        deadline = time.monotonic() + self.timeout
        for gate in self.gates:
            wait_for_path(gate, max(0.0, deadline - time.monotonic()))
        return self.result


class ProgressThenGate(Gated):
    """Reports half progress, then waits for the gate."""

    def __call__(self, task, session, context):
        report_progress(0.5, "half way")
        return super().__call__(task, session, context)


class GateThenProgress(Gated):
    """Writes ``started``, waits for ``gate``, reports progress ("going again"), then waits
    for ``then``: a worker that is quiet until the test lets it make progress."""

    def __init__(self, gate, started, then, result="released"):
        super().__init__(gate, started, result)
        self.then = str(then)

    def __call__(self, task, session, context):
        super().__call__(task, session, context)
        report_progress(0.5, "going again")
        wait_for_path(self.then, self.timeout)
        return self.result


class Sleeper:
    def __init__(self, secs: float):
        self.secs = secs

    def __call__(self, task, session, context):
        time.sleep(self.secs)
        return "slept"


class SpawnChildAndWait:
    """Starts ``sleep 60`` in a child process, writes its pid to ``pid_file``, waits on it."""

    def __init__(self, pid_file):
        self.pid_file = str(pid_file)

    def __call__(self, task, session, context):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        touch(self.pid_file, str(child.pid))
        child.wait()
        return "child ended"


class Chatty:
    """Writes to stdout and stderr (the mission log must capture both)."""

    def __call__(self, task, session, context):
        print("hello from stdout")
        print("hello from stderr", file=sys.stderr)
        return "spoke"


class Remember:
    """Stores ``value`` under ``key`` in the mission's session."""

    def __init__(self, key, value):
        self.key, self.value = key, value

    def __call__(self, task, session, context):
        session.set_memory(self.key, self.value)
        return self.value


class Chatter:
    """Emits a ``tick`` event every ``interval`` seconds until ``gate`` exists (a steady
    stream of events)."""

    def __init__(self, gate, interval=0.01, timeout=GATE_TIMEOUT):
        self.gate, self.interval, self.timeout = str(gate), interval, timeout

    def __call__(self, task, session, context):
        deadline = time.monotonic() + self.timeout
        tick = 0
        while not os.path.exists(self.gate):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gate {self.gate} did not open within {self.timeout} s")
            tick += 1
            emit_event("tick", n=tick)
            time.sleep(self.interval)
        return tick


class BigResult:
    """Returns a string of ``n_bytes`` characters (results over the 1 MiB threshold)."""

    def __init__(self, n_bytes: int) -> None:
        self.n_bytes = n_bytes

    def __call__(self, task, session, context):
        return "z" * self.n_bytes


async def async_echo(task, session, context):
    """An ``async def`` executor: awaits, then answers."""
    await asyncio.sleep(0.01)
    return f"async did: {task}"


class AsyncModel:
    """A model whose ``generate`` is a coroutine function (as most SDKs are)."""

    label = "async-model"

    async def generate(self, prompt: str) -> str:
        await asyncio.sleep(0.01)
        return "async model answer"


class Report:
    """Writes what the process running the step sees to ``path`` as JSON: an environment
    variable, the working directory, the import path, its pid and parent, a random number
    (and numpy's, when ``numpy_too``), whether ``module`` (if given) imports, and how
    SIGPIPE is handled."""

    def __init__(self, path, env_key="", module="", numpy_too=False):
        self.path, self.env_key, self.module = str(path), env_key, module
        self.numpy_too = numpy_too

    def __call__(self, task, session, context):
        import importlib
        import json
        import random
        import signal

        seen = {
            "env": os.environ.get(self.env_key) if self.env_key else None,
            "cwd": os.getcwd(),
            "sys_path": list(sys.path),
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "pgid": os.getpgid(0),
            "random": random.random(),
            "module": importlib.import_module(self.module).VALUE if self.module else None,
            "sigpipe": str(signal.getsignal(signal.SIGPIPE)),
        }
        if self.numpy_too:
            import numpy

            seen["numpy"] = float(numpy.random.random())
        touch(self.path, json.dumps(seen))
        return "reported"


class StreamProgress(Gated):
    """Reports progress every ``every`` seconds (a stream of changes) until the gate exists."""

    def __init__(self, gate, every=0.05, **options):
        super().__init__(gate, **options)
        self.every = every

    def __call__(self, task, session, context):
        deadline = time.monotonic() + self.timeout
        tick = 0
        while not all(os.path.exists(g) for g in self.gates) and time.monotonic() < deadline:
            tick += 1
            report_progress((tick % 100) / 100, f"tick {tick}")
            time.sleep(self.every)
        return self.result


class ProgressAfterGate(Gated):
    """Reports a little progress, waits for the first gate, reports more, then waits for the
    second: quiet in between, then moving again."""

    def __call__(self, task, session, context):
        report_progress(0.1, "started")
        wait_for_path(self.gates[0], self.timeout)
        report_progress(0.9, "moving again")
        wait_for_path(self.gates[1], self.timeout)
        return self.result


def echo_environment(task, session, context):
    """Returns the worker's environment variable named by the step's description."""
    return os.environ.get(task)
