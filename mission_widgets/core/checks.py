"""Checks of numeric options and bounds on text.

Every constructor that takes seconds or factors checks them here: a bool, a string, NaN, an
infinity or a negative number is refused at once, with an error that names the option
(``heartbeat_secs=nan`` must not busy-loop a worker later). Errors, tracebacks and messages
are kept up to :data:`TEXT_LIMIT` characters (their start and end, with a note of what was
left out): a 10 MB error message must not make a 180 MB store.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def number_option(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> float | None:
    """``value`` as a float when it is a finite number >= 0 (> 0 when ``positive``; None
    when ``allow_none`` and it is None); else ``error`` naming ``name``."""
    if value is None and allow_none:
        return None
    bound = "> 0" if positive else ">= 0"
    none = " or None" if allow_none else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{name} must be a number {bound}{none}, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        hint = " (None waits without a limit)" if allow_none and math.isinf(number) else ""
        raise error(f"{name} must be a finite number {bound}{none}, got {value!r}{hint}")
    if number < 0 or (positive and number == 0):
        raise error(f"{name} must be a number {bound}{none}, got {value!r}")
    return number


#: Longest error, traceback or message kept in the store; the rest is summarised in place.
TEXT_LIMIT = 64 * 1024
#: The text fields of events, summary rows and final states that TEXT_LIMIT bounds.
BOUNDED_FIELDS = frozenset(
    {
        "error",
        "error_message",
        "last_error",
        "message",
        "reason",
        "stall_reason",
        "explanation",
        "traceback",
        "result_summary",
    }
)


def bound_text(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` when it fits ``limit`` characters, else its start and end with a note of
    how much was left out between them."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 8) :]
    left_out = len(text) - len(head) - len(tail)
    return (
        f"{head}\n... [{left_out:,} characters not stored: text over {limit // 1024} KiB "
        f"is kept as its start and end] ...\n{tail}"
    )


def bound_fields(value: Any) -> Any:
    """``value`` (an event, a summary, a final state) with every over-long text of
    BOUNDED_FIELDS bounded; the same object when nothing is too long."""
    if isinstance(value, dict):
        changed = None
        for key, item in value.items():
            if isinstance(item, str):
                new = bound_text(item) if key in BOUNDED_FIELDS else item
            elif isinstance(item, dict | list):
                new = bound_fields(item)
            else:
                continue
            if new is not item:
                changed = changed if changed is not None else dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, list):
        items = [bound_fields(item) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    return value
