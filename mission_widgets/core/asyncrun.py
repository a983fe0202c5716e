"""Running the coroutines of ``async def`` executors and async models from synchronous code.

Every coroutine runs on one event loop of the package's own, in a dedicated daemon thread
(started on first use). So it works the same in a worker process, on a thread backend and
when ``Mission.run()`` is called from a notebook cell whose thread already runs a loop;
asyncio is never patched and loops are never nested. One long-lived loop also lets async
clients (HTTP connection pools) be reused across steps. The caller blocks until the
coroutine ends; a step's time limit cancels the coroutine on the loop.
"""

from __future__ import annotations

import contextvars
import threading
import time

from .errors import StepTimeoutError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Coroutine
    from typing import Any

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()

#: (when the current step attempt must end as time.monotonic(), its limit in seconds), or
#: None without a time limit.
attempt_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "mission_widgets_attempt_deadline", default=None
)


def _background_loop() -> asyncio.AbstractEventLoop:
    """The package's event loop, running in its own daemon thread."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            import asyncio

            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=serve, name="mission-widgets-asyncio", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


async def _in_context(awaitable: Awaitable[Any], context: contextvars.Context) -> Any:
    # The task runs in a copy of the loop thread's context: carry the caller's values over
    # (the current step, so report_progress() works inside async executors).
    for var, value in context.items():
        var.set(value)
    return await awaitable


def run_awaitable(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` to its end on the package's loop and return its result.

    Honours the current attempt's deadline: when it passes, the coroutine is cancelled and
    :class:`StepTimeoutError` is raised. An interrupt of the waiting thread (a timeout
    signal, KeyboardInterrupt) cancels it as well.
    """
    import asyncio
    import concurrent.futures

    coroutine: Coroutine[Any, Any, Any] = _in_context(awaitable, contextvars.copy_context())
    future = asyncio.run_coroutine_threadsafe(coroutine, _background_loop())
    deadline = attempt_deadline.get()
    try:
        if deadline is None:
            return future.result()
        ends_at, limit = deadline
        try:
            return future.result(max(0.0, ends_at - time.monotonic()))
        except (TimeoutError, concurrent.futures.TimeoutError):
            if future.done():
                return future.result()
            raise StepTimeoutError(f"step attempt timed out after {limit:g} s") from None
    finally:
        if not future.done():
            future.cancel()


def settle(value: Any) -> Any:
    """``value`` itself, or what it evaluates to when it is awaitable (a coroutine).

    Checked on the type, as ``inspect.isawaitable`` does, without importing inspect (it
    costs worker start-up).
    """
    return run_awaitable(value) if hasattr(type(value), "__await__") else value
