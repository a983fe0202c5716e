"""Rebuild a mission's state from its events: how a kernel mirrors a mission running elsewhere.

:func:`apply_event` is pure state-keeping (no I/O) and the single place that knows how each
event changes a mission, so mirrors fed from the SQLite store or a Dask topic agree. A
mirror's progress follows the same rule as the mission's (it is a Mission): it never goes
back while the mission runs, and a failed or cancelled mission keeps what it reached.
"""

from __future__ import annotations

from .events import Event
from .status import MissionStatus, StepStatus, health_reason
from .step import MissionStep

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _step(mission: Any, event: Event) -> MissionStep | None:
    step_id = event.get("step_id")
    if step_id is None or not mission.steps:
        return None
    for step in mission.steps:
        if step.id == step_id:
            return step
    return None


def _ensure_steps(mission: Any, specs: list[dict[str, Any]] | None) -> None:
    if mission.steps or not specs:
        return
    mission.steps = [MissionStep.from_spec(spec) for spec in specs]


def _mission_status(value: Any, default: MissionStatus) -> MissionStatus:
    """The status an event names (a plain string on the wire), else ``default``."""
    try:
        return MissionStatus(value)
    except ValueError:
        return default


def apply_event(mission: Any, event: Event, *, record: bool = True) -> None:
    """Update ``mission`` (status, steps, progress, errors) as ``event`` says; log it."""
    name = event.get("event")
    ts = event.get("timestamp")
    if name == "mission_start":
        mission.status = MissionStatus.RUNNING
        mission.started_at = ts
        mission.finished_at = None
        mission.error = None
        mission.message = None
    elif name == "progress" and event.get("message"):
        mission.message = event["message"]
        step = _step(mission, event)
        if step is not None:
            _apply_step_event(step, name, event)
    elif name == "planner_start":
        mission.status = MissionStatus.PLANNING
    elif name in ("planner_done", "mission_planned"):
        _ensure_steps(mission, event.get("steps"))
        if name == "mission_planned":
            mission.status = MissionStatus.RUNNING
    elif name == "mission_waiting":  # waiting for a person's decision: not finished
        mission.status = MissionStatus.WAITING
        mission.waiting_on = event.get("waiting_on") or event.get("step_id")
    elif name in ("escalation_retry", "escalation_skip", "escalation_abort"):
        mission.waiting_on = None
    elif name == "mission_resumed":
        mission.status = MissionStatus.RUNNING
        mission.waiting_on = None
    elif name == "mission_stall":
        # A health flag on a running mission (its status stays); the runner's own
        # mission_stall (retries exhausted) is followed by mission_done "stalled".
        reason = health_reason(event)
        if reason is not None:
            mission.stall_reason = reason
    elif name == "mission_recovered":
        mission.stall_reason = None
    elif name == "mission_done":
        mission.waiting_on = None
        mission.status = _mission_status(event.get("status"), mission.status)
        mission.error = event.get("error_message")
        mission.finished_at = ts
        if mission.status != "succeeded":
            # Ended from outside (cancel, dead worker): steps in flight did not finish.
            for step in mission.steps or []:
                if step.status in ("running", "retrying"):
                    step.status = StepStatus.FAILED
                    step.finished_at = ts
                    step.error_history.append(
                        {
                            "attempt": len(step.error_history) + 1,
                            "error": mission.error or mission.status,
                            "error_type": "mission_" + mission.status,
                            "timestamp": ts,
                        }
                    )
    else:
        step = _step(mission, event)
        if step is not None:
            _apply_step_event(step, name, event)
    if record:
        mission.audit_log.append(event)


def _apply_step_event(step: MissionStep, name: str | None, event: Event) -> None:
    if name == "step_start":
        step.status = StepStatus.RETRYING if step.retry_count else StepStatus.RUNNING
        step.progress = 0.0
        step.started_at = step.started_at or event.get("timestamp")
    elif name == "progress":
        step.progress = float(event.get("progress") or 0.0)
    elif name == "step_failure":
        step.error_history.append(
            {
                "attempt": event.get("attempt"),
                "error": event.get("error_message"),
                "error_type": event.get("error_type"),
                "timestamp": event.get("timestamp"),
                "traceback": event.get("traceback"),
            }
        )
    elif name == "retry_start":
        step.retry_count += 1
    elif name in ("step_success", "step_done"):
        step.status = StepStatus.DONE
        step.progress = 1.0
        if event.get("result") is not None:
            step.result = event["result"]
        step.finished_at = event.get("timestamp")
        if event.get("resolved_by") == "decision":  # a person skipped it: not a success
            step.status = StepStatus.SKIPPED
    elif name == "step_failed":
        step.status = StepStatus.FAILED
        step.finished_at = event.get("timestamp")
    elif name == "step_skipped":
        step.skipped = True
