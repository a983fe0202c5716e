"""Checks of numeric options, shared by every constructor that takes seconds or factors:
a bool, a string, NaN, an infinity or a negative number is refused at once, with an error
that names the option (``heartbeat_secs=nan`` must not busy-loop a worker later)."""

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
