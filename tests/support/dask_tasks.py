"""Executors and helpers for the Dask backend tests.

The module is registered with cloudpickle to travel *by value*: Dask workers (and the
mission processes they start) rebuild these classes without importing this file, just as
they would a notebook's functions.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cloudpickle
import psutil

from mission_widgets.core.events import report_progress
from mission_widgets.runtime.dask_ingest import unpack
from support.waiting import wait_for as wait_for


class Steady:
    """Reports progress in ``ticks`` steps, prints a line, returns the task upper-cased."""

    def __init__(self, ticks: int = 4, pause: float = 0.03) -> None:
        self.ticks, self.pause = ticks, pause

    def __call__(self, task: str, session: Any, context: str | None) -> str:
        for i in range(self.ticks):
            time.sleep(self.pause)
            report_progress((i + 1) / self.ticks, f"tick {i + 1}")
        print(f"done: {task}", flush=True)
        return task.upper()


class Marker:
    """Writes ``started`` (holding the time it will finish), and at that time ``marker``.

    A mission stopped in between never writes ``marker``: that is what cancel must ensure.
    """

    def __init__(self, started: Path, marker: Path, delay: float) -> None:
        self.started, self.marker, self.delay = str(started), str(marker), delay

    def __call__(self, task: str, session: Any, context: str | None) -> str:
        end = time.time() + self.delay
        # Written whole, then renamed: a reader that sees the file sees all of it.
        partial = Path(f"{self.started}.partial")
        partial.write_text(f"{end} {os.getpid()}")
        os.replace(partial, self.started)
        while time.time() < end:
            time.sleep(0.05)
        Path(self.marker).write_text("reached")
        return "reached"


class Sleeper:
    """Sleeps ``secs``: in one C call (``chunk=None``) or in small pure-Python steps."""

    def __init__(self, secs: float, chunk: float | None = None) -> None:
        self.secs, self.chunk = secs, chunk

    def __call__(self, task: str, session: Any, context: str | None) -> str:
        if self.chunk is None:
            time.sleep(self.secs)
        else:
            end = time.time() + self.secs
            while time.time() < end:
                time.sleep(self.chunk)
        return "slept"


class FlakyOnce:
    """Fails its first attempt in a run, then succeeds (saying, if asked, with what context)."""

    def __init__(self, show_context: bool = False) -> None:
        self.calls = 0
        self.show_context = show_context

    def __call__(self, task: str, session: Any, context: str | None) -> str:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("flaky network (first attempt)")
        if self.show_context:
            return f"ok after {self.calls} attempts; context: {context}"
        return f"ok after {self.calls} attempts"


class Analyst:
    """A model (``prompt -> text``) that explains any failure the same way."""

    answer = "root cause: the column is named 'Price'"

    def __call__(self, prompt: str) -> str:
        return self.answer


async def async_upper(task: str, session: Any, context: str | None) -> str:
    """An ``async def`` executor: awaits, reports which thread ran its event loop."""
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    return f"{task.upper()} on {type(loop).__name__}"


class AsyncPlanner:
    """A model whose ``generate`` is a coroutine: plans every goal into two steps."""

    async def generate(self, prompt: str) -> str:
        await asyncio.sleep(0.01)
        return (
            '[{"id": "s1", "description": "first", "can_parallel": false, "depends_on": []},'
            ' {"id": "s2", "description": "second", "can_parallel": false, "depends_on": ["s1"]}]'
        )


class HeavyModules:
    """Returns the heavy modules loaded in the process running the step (should be none)."""

    def __call__(self, task: str, session: Any, context: str | None) -> list[str]:
        heavy = {"dask", "distributed", "pandas", "ipywidgets", "IPython"}
        return sorted(name for name in sys.modules if name.split(".")[0] in heavy)


class Raiser:
    """Raises ``error`` (any BaseException: SystemExit, KeyboardInterrupt, ...) when run."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, task: str, session: Any, context: str | None) -> str:
        raise self.error


class Unpicklable:
    """Returns a ``threading.Lock``: a result that cannot be pickled."""

    def __call__(self, task: str, session: Any, context: str | None) -> Any:
        return threading.Lock()


class StepTired(BaseException):
    """A BaseException of the user's own (neither Exception nor SystemExit)."""


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def started_info(path: Path) -> tuple[float, int]:
    """(time the executor would write its marker, pid of the process running it)."""
    end, pid = path.read_text().split()
    return float(end), int(pid)


def dask_start(mission: Any) -> dict[str, Any] | None:
    """The mission's ``dask_start`` event (worker, pid, child_pid), once it was mirrored."""
    for event in mission.audit_log:
        if event.get("event") == "dask_start":
            return event
    return None


def topic_events(client: Any, topic: str, mission_id: str) -> list[dict[str, Any]]:
    """The mission's events as the scheduler's event log holds them (in batches or alone)."""
    return [
        msg["event"]
        for _, message in client.get_events(topic)
        for msg in unpack(message)
        if isinstance(msg, dict) and msg.get("mission_id") == mission_id and "event" in msg
    ]


cloudpickle.register_pickle_by_value(sys.modules[__name__])
