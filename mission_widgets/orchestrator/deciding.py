"""Decisions by a person for a mission that waits (aisdk's interactive escalation), at the
level of a store: usable from any process, with or without an orchestrator.

``orch.decide``/``orch.explain`` and the ``mission-widgets decide``/``explain`` commands call
these; the worker that runs the mission takes the answer as a request from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.decisions import EXPLAIN_PROMPT_HEADER
from ..core.errors import MissionError, describe_error
from ..core.events import make_event
from .mirror import waiting_step

if TYPE_CHECKING:
    from ..core.mission import Mission
    from ..runtime.store import MissionStore

#: What decide() accepts (aisdk's interactive escalation).
DECISIONS = ("retry", "skip", "abort")


def waiting_on_in_store(store: MissionStore, mission_id: str) -> str | None:
    """The step mission ``mission_id`` waits on for a person's decision, else None."""
    return waiting_step(store.events_for(mission_id))


def require_waiting(store: MissionStore, mission_id: str, what: str) -> str:
    """The step ``mission_id`` waits on; KeyError for an unknown id, MissionError when it
    does not wait for a decision."""
    row = store.row(mission_id)
    if row is None:
        raise KeyError(f"no mission {mission_id!r} in store {store.root}")
    step_id = waiting_on_in_store(store, mission_id) if row["finished_at"] is None else None
    if step_id is None:
        raise MissionError(
            f"cannot {what} mission {mission_id}: it is not waiting for a decision "
            f"(status {row['status']})"
        )
    return step_id


def decide_in_store(store: MissionStore, mission_id: str, action: str) -> str:
    """Answer a waiting mission with ``"retry"``, ``"skip"`` or ``"abort"`` (ValueError
    listing the choices for anything else); returns the step it waited on."""
    if action not in DECISIONS:
        raise ValueError(f"unknown decision {action!r}; choose one of: {', '.join(DECISIONS)}")
    step_id = require_waiting(store, mission_id, f"decide {action!r} for")
    store.add_request(mission_id, "decision", {"action": action, "step_id": step_id})
    return step_id


def explain_in_store(
    store: MissionStore, mission_id: str, model: Any = None, mission: Mission | None = None
) -> str:
    """Ask ``model`` (default: the mission's, else the model named in its row) to analyse the
    failures of the step the mission waits on; record the text as a ``mission_explained``
    event, hand it to the worker for a following retry, and return it."""
    from ..core.models import resolve_model

    step_id = require_waiting(store, mission_id, "explain")
    if model is None and mission is not None:
        model = mission.model
    if model is None:
        row = store.row(mission_id)
        model = row["model"] if row is not None and row["model"] else None
    if model is None:
        raise MissionError(
            f"mission {mission_id} has no model to explain its failures; decide "
            "retry, skip or abort without an explanation"
        )
    prompt = explanation_prompt(mission, step_id, store.events_for(mission_id))
    resolved = resolve_model(model)
    assert resolved is not None  # model is not None here
    try:
        text = str(resolved.generate(prompt)).strip()
    except Exception as exc:
        raise MissionError(
            f"the model of mission {mission_id} could not explain step {step_id!r}: "
            f"{describe_error(exc)}"
        ) from exc
    store.append_event(
        make_event("mission_explained", mission_id, step_id=step_id, explanation=text)
    )
    store.add_request(mission_id, "explanation", {"text": text, "step_id": step_id})
    return text


def explanation_prompt(mission: Mission | None, step_id: str, events: list[dict[str, Any]]) -> str:
    """aisdk's question to the model about a step that used its retries."""
    goal = mission.goal if mission is not None else _started_goal(events)
    description = ""
    if mission is not None and mission.steps:
        description = next((s.description for s in mission.steps if s.id == step_id), "")
    failures = [
        f"- attempt {e.get('attempt')}: {e.get('error_type')}: {e.get('error_message')}"
        for e in events
        if e.get("event") == "step_failure" and e.get("step_id") == step_id
    ]
    return (
        f"{EXPLAIN_PROMPT_HEADER}\n"
        f"Mission goal: {goal}\n"
        f"Step {step_id}: {description}\n"
        "Errors:\n" + ("\n".join(failures) or "- (none recorded)") + "\n"
        "Answer briefly: 1. the root cause; 2. alternative approaches; "
        "3. whether to retry, skip the step or abort the mission."
    )


def _started_goal(events: list[dict[str, Any]]) -> str:
    """The goal as the mission_start event recorded it (a process without the mirror)."""
    for event in events:
        if event.get("event") == "mission_start":
            return str(event.get("goal") or "")
    return ""
