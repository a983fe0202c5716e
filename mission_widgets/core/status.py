"""Mission and step statuses as ``str`` Enums whose values are the plain status strings.

A status compares equal to its string (``MissionStatus.RUNNING == "running"``), and every way
it leaves Python gives the plain string: ``str()``, f-strings, ``json.dumps`` and pickling
(a pickled status unpickles as a ``str``, so payloads and events need no import to read).
"""

from __future__ import annotations

from enum import Enum

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class _StatusEnum(str, Enum):
    """A str Enum that looks like its value everywhere but its repr."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (str, (str.__str__(self),))


class MissionStatus(_StatusEnum):
    PENDING = "pending"
    PLANNING = "planning"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STALLED = "stalled"
    CANCELLED = "cancelled"


class StepStatus(_StatusEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"


#: Every mission status, in life order (the plain strings; also the categories of status()).
MISSION_STATUSES: tuple[str, ...] = tuple(s.value for s in MissionStatus)
#: Statuses after which a mission does nothing more until it is run again.
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {
        MissionStatus.SUCCEEDED.value,
        MissionStatus.FAILED.value,
        MissionStatus.STALLED.value,
        MissionStatus.CANCELLED.value,
    }
)
#: Every step status (the plain strings).
STEP_STATUSES: tuple[str, ...] = tuple(s.value for s in StepStatus)
