"""Mission events: the one stream every view (audit log, hooks, store, panel) is built from.

An event is a plain dict with the common fields (``event``, ``timestamp``,
``mission_id``, ``step_id``, ``attempt``, ``error_type``, ``error_message``,
``duration_ms``) plus event-specific extras. This module also holds the context
(contextvars) that lets code running inside a step report progress or emit its own
events without being handed the mission: :func:`report_progress` and :func:`emit_event`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    Event = dict[str, Any]
    EventSink = Callable[[Event], None]
else:
    Event = dict
    EventSink = Callable

#: Fields every event carries (None where they do not apply).
EVENT_FIELDS = (
    "event",
    "timestamp",
    "mission_id",
    "step_id",
    "attempt",
    "error_type",
    "error_message",
    "duration_ms",
)

_PLAIN = (str, int, float, bool, type(None), list, dict, tuple)


def make_event(
    name: str,
    mission_id: str | None,
    *,
    step_id: str | None = None,
    attempt: int | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    duration_ms: float | None = None,
    timestamp: float | None = None,
    **extra: Any,
) -> Event:
    """Build an event dict with every standard field present."""
    event: Event = {
        "event": name,
        "timestamp": time.time() if timestamp is None else timestamp,
        "mission_id": mission_id,
        "step_id": step_id,
        "attempt": attempt,
        "error_type": error_type,
        "error_message": error_message,
        "duration_ms": duration_ms,
    }
    for key, value in extra.items():
        # Events go to JSON (save files, the store): keep odd values readable, not fatal.
        event[key] = value if isinstance(value, _PLAIN) else repr(value)
    return event


class StepContext:
    """Where code is running: set while a step attempt executes."""

    __slots__ = ("attempt", "emit", "guard", "step")

    def __init__(
        self,
        emit: Callable[..., Any],
        step: Any,
        attempt: int,
        guard: Callable[[str | None, str | None, StepContext], None] | None = None,
    ) -> None:
        self.emit = emit  # emit(name, step_id=..., attempt=..., **extra)
        self.step = step  # None while planning
        self.attempt = attempt
        self.guard = guard  # guard(model, prompt) before a model call: the budget (.budget)


_current: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "mission_widgets_step", default=None
)


def guard_model_call(model: str | None, prompt: str | None = None) -> None:
    """Call before a model call: the running mission's budget (:mod:`.budget`) may refuse it
    by raising ``BudgetExceeded``. Does nothing outside a mission or without a budget."""
    ctx = _current.get()
    if ctx is not None and ctx.guard is not None:
        ctx.guard(model, prompt, ctx)


def set_step_context(ctx: StepContext | None) -> contextvars.Token:
    return _current.set(ctx)


def reset_step_context(token: contextvars.Token) -> None:
    _current.reset(token)


def report_progress(fraction: float, message: str | None = None) -> bool:
    """Report progress inside a long step: ``report_progress(0.3, "parsed 3 of 10 files")``.

    Emits a ``progress`` event for the current mission and step (found through contextvars,
    so it works from the step's thread). Returns False, doing nothing, when called outside
    a running step, so library code can call it unconditionally.
    """
    ctx = _current.get()
    if ctx is None or ctx.step is None:
        return False
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise TypeError(
            f"report_progress(fraction) needs a number in 0..1, got {fraction!r}"
        ) from None
    if value != value:  # NaN
        raise ValueError("report_progress(fraction) got NaN")
    value = min(1.0, max(0.0, value))
    ctx.step.progress = value
    ctx.emit(
        "progress",
        step_id=ctx.step.id,
        attempt=ctx.attempt,
        progress=value,
        message=None if message is None else str(message),
    )
    return True


def emit_event(name: str, **fields: Any) -> bool:
    """Emit a custom event (e.g. ``model_call`` with token usage) for the current step.

    Returns False outside a running step.
    """
    ctx = _current.get()
    if ctx is None:
        return False
    fields.setdefault("step_id", None if ctx.step is None else ctx.step.id)
    fields.setdefault("attempt", ctx.attempt)
    ctx.emit(name, **fields)
    return True
