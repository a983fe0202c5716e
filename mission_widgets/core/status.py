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
    from collections.abc import Mapping
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
    #: A person must decide (``StallPolicy(on_max_retries="ask")``): not finished.
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Ended because a step used its retries and nothing resolved it (aisdk's meaning).
    STALLED = "stalled"
    CANCELLED = "cancelled"


class StepStatus(_StatusEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    #: Failed, and the mission went on without it (policy "skip" or a person's decision):
    #: finished, never a success.
    SKIPPED = "skipped"


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

#: Why a *running* mission looks unhealthy (``stall_reason``; the ``health`` column is one
#: of these or "ok"). Such a mission stays ``running``: the flag clears when it recovers.
NO_HEARTBEAT = "no_heartbeat"
NO_PROGRESS = "no_progress"
STALL_REASONS: tuple[str, ...] = (NO_HEARTBEAT, NO_PROGRESS)
HEALTHY = "ok"


def stalled_error(step_id: str, attempts: int, why: str = "no escalate_fn resolved it") -> str:
    """The error of a mission that ended ``stalled``: "step 'x' failed 3 times; no
    escalate_fn resolved it" (``why`` says otherwise when nobody could be asked)."""
    times = "time" if attempts == 1 else "times"
    return f"step {step_id!r} failed {attempts} {times}; {why}"


def health_reason(event: Mapping[str, Any]) -> str | None:
    """The health flag a ``mission_stall`` event raises ("no_heartbeat" | "no_progress"),
    or None for the runner's own (a step used its retries: the mission ends ``stalled``).
    Flags written by older releases (a sentence) read as the flag they meant."""
    if event.get("source") != "reconcile":
        return None
    reason = str(event.get("reason") or "")
    if reason in STALL_REASONS:
        return reason
    return "no_heartbeat" if "heartbeat" in reason else "no_progress"
