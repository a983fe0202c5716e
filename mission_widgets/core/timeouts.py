"""Run one step attempt with a time limit, stopping it as hard as the place allows.

Two ways, chosen per call:

* **signal** (the worker process, main thread only): ``SIGALRM`` raises inside the attempt,
  which interrupts ``time.sleep``, blocking I/O and pure-Python loops alike.
* **thread** (everywhere else): the attempt runs in a helper thread; when it overruns, the
  caller gets :class:`StepTimeoutError` at once and the helper thread receives an
  asynchronous exception. That stops pure-Python code at its next bytecode, but a thread
  blocked inside a C call (``time.sleep``, a socket read) only stops when that call returns:
  **a thread cannot be killed**. The subprocess runtime kills the whole worker on cancel.

The interrupt is a ``BaseException`` so an executor's ``except Exception`` cannot swallow it.
"""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Callable

from .errors import StepTimeoutError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_signal_timeouts_enabled = False


class AttemptInterrupted(BaseException):
    """Raised inside an attempt that overran its time limit."""


def enable_signal_timeouts(enabled: bool = True) -> None:
    """Let main-thread attempts be stopped with SIGALRM (the worker process does this)."""
    global _signal_timeouts_enabled
    _signal_timeouts_enabled = enabled and hasattr(signal, "setitimer")


def _timeout_error(timeout: float) -> StepTimeoutError:
    return StepTimeoutError(f"step attempt timed out after {timeout:g} s")


def call_with_timeout(fn: Callable[[], Any], timeout: float | None) -> Any:
    """Call ``fn()``; raise :class:`StepTimeoutError` if it runs longer than ``timeout`` s."""
    if timeout is None:
        return fn()
    if _signal_timeouts_enabled and threading.current_thread() is threading.main_thread():
        return _call_with_alarm(fn, timeout)
    return _call_in_thread(fn, timeout)


def _call_with_alarm(fn: Callable[[], Any], timeout: float) -> Any:
    def on_alarm(signum: int, frame: object) -> None:
        raise AttemptInterrupted()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.monotonic()
    try:
        return fn()
    except AttemptInterrupted:
        raise _timeout_error(timeout) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:  # give back an outer timer (e.g. pytest-timeout's) what it has left
            remaining = max(0.001, outer_delay - (time.monotonic() - started))
            signal.setitimer(signal.ITIMER_REAL, remaining, outer_interval)


class _Box:
    __slots__ = ("done", "error", "finished", "lock", "result")

    def __init__(self) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.lock = threading.Lock()
        self.done = threading.Event()


def _call_in_thread(fn: Callable[[], Any], timeout: float) -> Any:
    box = _Box()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            try:
                box.result = context.run(fn)
            except BaseException as exc:  # handed to the caller below
                box.error = exc
            with box.lock:
                box.finished = True
            box.done.set()
        except AttemptInterrupted:  # an interrupt that landed after fn returned
            box.done.set()

    thread = threading.Thread(target=target, name="mission-step-attempt", daemon=True)
    thread.start()
    if not box.done.wait(timeout):
        with box.lock:
            if not box.finished:
                async_raise(thread.ident, AttemptInterrupted)
                raise _timeout_error(timeout)
        box.done.wait()
    if box.error is not None:
        if isinstance(box.error, AttemptInterrupted):
            raise _timeout_error(timeout)
        raise box.error
    return box.result


def async_raise(ident: int | None, exc_type: type[BaseException] | None) -> None:
    """Raise ``exc_type`` in thread ``ident`` at its next bytecode (None: clear a pending one)."""
    if ident is None:
        return
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), None if exc_type is None else ctypes.py_object(exc_type)
    )
