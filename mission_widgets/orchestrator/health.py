"""Health of running missions: is the worker's heartbeat fresh, is the mission making progress?

A mission whose heartbeat or progress stopped stays ``running``; it gets a health flag,
``stall_reason`` = "no_heartbeat" or "no_progress" (a ``mission_stall`` event in the store),
that clears (``mission_recovered``) when its heartbeat or progress resumes. A mission waiting
for a person is never flagged for lack of progress: nothing is expected of it.

:func:`health_of` is the one rule; ``reconcile()`` applies it with the thresholds it is given,
and the orchestrator's health monitor (a :class:`~.watcher.Watcher` that nothing wakes, so
its period is fixed) applies it with the orchestrator's thresholds every
:data:`HEALTH_PERIOD_SECS` while anything is in flight. No stream of changes can postpone it:
a frozen worker is flagged within ``heartbeat_timeout_secs`` + one period however busy the
other missions are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.events import make_event
from ..core.status import NO_HEARTBEAT, NO_PROGRESS

if TYPE_CHECKING:
    from ..runtime.backend import Row
    from ..runtime.store import MissionStore

#: Seconds between two health checks of the running missions (fixed; nothing resets it).
HEALTH_PERIOD_SECS = 0.5
#: Default seconds without any event before a running mission is flagged "no_progress": long
#: enough for a slow model call, short enough to see in a demo.
DEFAULT_NO_PROGRESS_SECS = 60.0


def health_of(
    row: Row,
    now: float,
    *,
    heartbeat_timeout_secs: float,
    no_progress_secs: float,
    waiting: bool,
    has_heartbeat: bool,
) -> tuple[str, str] | None:
    """``(reason, detail)`` when the running mission of ``row`` looks unhealthy, else None.

    "no_heartbeat" (its worker's last beat is older than ``heartbeat_timeout_secs``: stopped,
    frozen or gone) wins over "no_progress" (no event for ``no_progress_secs`` since it
    started; never for a mission ``waiting`` for a person). ``has_heartbeat``: the
    backend's workers beat.
    """
    if has_heartbeat and row.get("pid"):
        beat = row.get("last_heartbeat")
        if beat is not None and now - beat > heartbeat_timeout_secs:
            return NO_HEARTBEAT, (
                f"heartbeat lost: last beat {now - beat:.1f} s ago "
                f"(timeout {heartbeat_timeout_secs:g} s)"
            )
    if waiting or not row.get("started_at"):  # asking a person, or its worker starting
        return None
    activity = row.get("last_activity") or row["started_at"]
    if now - activity > no_progress_secs:
        return NO_PROGRESS, (
            f"no progress for {now - activity:.0f} s (threshold {no_progress_secs:g} s)"
        )
    return None


def flag_unhealthy(
    store: MissionStore, mission_id: str, reason: str, detail: str
) -> dict[str, Any] | None:
    """Record a health flag of a running mission (``reason``: "no_heartbeat" or
    "no_progress"; ``detail`` in words) as a ``mission_stall`` event, unless it has ended.
    Its status does not change; ``mission_recovered`` clears the flag."""
    event = make_event(
        "mission_stall",
        mission_id,
        error_type="stall",
        error_message=detail,
        reason=reason,
        detail=detail,
        source="reconcile",
    )
    return store.append_unless_finished(event)
