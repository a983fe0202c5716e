"""Decisions by a person for a mission that waits (aisdk's interactive escalation), at the
level of a store: usable from any process, with or without an orchestrator.

``orch.decide``/``orch.explain`` and the ``mission-widgets decide``/``explain`` commands call
these; the worker that runs the mission takes the answer as a request from the store.

An answer is bound to the question it answers (the ``question`` of the mission's last
``mission_waiting`` event) and claimed once in the store's ``decisions`` table: of two
processes racing to answer, exactly one wins and the other gets a
:class:`~mission_widgets.core.errors.DecisionConflictError` naming who decided what; the
worker ignores an answer bound to an earlier question.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..core.errors import DecisionConflictError, MissionError, describe_error
from ..core.events import make_event
from ..core.planning import EXPLAIN_PROMPT_HEADER
from .mirror import waiting_step

if TYPE_CHECKING:
    from ..core.mission import Mission
    from ..runtime.store import MissionStore

#: What decide() accepts (aisdk's interactive escalation).
DECISIONS = ("retry", "skip", "abort")


def waiting_on_in_store(store: MissionStore, mission_id: str) -> str | None:
    """The step mission ``mission_id`` waits on for a person's decision, else None."""
    return waiting_step(store.events_for(mission_id))


def require_waiting(store: MissionStore, mission_id: str, what: str) -> tuple[str, str]:
    """``(step_id, question)`` that ``mission_id`` waits on; KeyError for an unknown id,
    DecisionConflictError when its last question was answered already (naming who answered
    what), MissionError when it does not wait for a decision."""
    row = store.row(mission_id)
    if row is None:
        raise KeyError(f"no mission {mission_id!r} in store {store.root}")
    asked, last = questions(store.events_for(mission_id))
    if asked is None or row["finished_at"] is not None:
        first = store.decision_of(mission_id, last) if last is not None else None
        if first is not None:
            raise _conflict(mission_id, what, first)
        raise MissionError(
            f"cannot {what} mission {mission_id}: it is not waiting for a decision "
            f"(status {row['status']})"
        )
    return asked


def questions(events: list[dict[str, Any]]) -> tuple[tuple[str, str] | None, str | None]:
    """``(open, last)``: the ``(step_id, question)`` a mission waits on now (None when it
    waits on nothing) and the id of the last question it asked (None: it never asked).
    A ``mission_waiting`` of an older release has no question id: its seq stands in."""
    last: str | None = None
    open_: tuple[str, str] | None = None
    for event in events:
        name = event.get("event")
        if name == "mission_waiting":
            last = str(event.get("question") or f"seq:{event.get('seq')}")
            open_ = (str(event.get("waiting_on") or event.get("step_id") or ""), last)
        elif name in ("mission_resumed", "mission_done") or str(name).startswith("escalation_"):
            open_ = None
    return open_, last


def decider() -> str:
    """Who answers, as a conflicting answer names them: user, host and process."""
    try:
        user = os.getlogin()
    except OSError:
        user = os.environ.get("USER") or "?"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def decide_in_store(store: MissionStore, mission_id: str, action: str) -> str:
    """Answer a waiting mission with ``"retry"``, ``"skip"`` or ``"abort"`` (ValueError
    listing the choices for anything else); returns the step it waited on.

    The answer is claimed for the question asked now: DecisionConflictError (naming who
    decided what, and when) when another answer, or the timeout's fallback, came first.
    """
    if action not in DECISIONS:
        raise ValueError(f"unknown decision {action!r}; choose one of: {', '.join(DECISIONS)}")
    what = f"decide {action!r} for"
    step_id, question = require_waiting(store, mission_id, what)
    first = store.claim_decision(
        mission_id,
        question,
        step_id=step_id,
        action=action,
        decided_by=decider(),
        request={"action": action, "step_id": step_id, "question": question},
    )
    if first is not None:
        raise _conflict(mission_id, what, first)
    return step_id


def _conflict(mission_id: str, what: str, first: dict[str, Any]) -> DecisionConflictError:
    when = time.strftime("%H:%M:%S", time.localtime(first["decided_at"]))
    return DecisionConflictError(
        f"cannot {what} mission {mission_id}: it is not waiting for a decision any more: "
        f"step {first['step_id']!r} was already decided {first['action']!r} by "
        f"{first['decided_by']} at {when}; nothing was changed"
    )


def explain_in_store(
    store: MissionStore, mission_id: str, model: Any = None, mission: Mission | None = None
) -> str:
    """Ask ``model`` (default: the mission's, else the model named in its row) to analyse the
    failures of the step the mission waits on; record the text as a ``mission_explained``
    event, hand it to the worker for a following retry, and return it."""
    from ..core.models import resolve_model

    step_id, question = require_waiting(store, mission_id, "explain")
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
    store.add_request(
        mission_id, "explanation", {"text": text, "step_id": step_id, "question": question}
    )
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
