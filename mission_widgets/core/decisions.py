"""Decisions by a person (``StallPolicy(on_max_retries="ask")``), aisdk's interactive escalation.

When a step has used its retries, the mission waits, in its own thread, for an answer from
``mission.decision_source(step)`` (set by the runtime from the store, or given by the user),
polled every :data:`DECISION_POLL_SECS`. While it waits the mission is ``waiting`` with
``waiting_on`` = the step id (the ``mission_waiting`` event's reason names the step); it is
not finished, its heartbeat goes on, and cancel works. Answers:

* ``"retry"``: one more attempt with the failures in its context (and an explanation, when
  one was given, as "[AGENT ANALYSIS] ..." in the error history);
* ``"skip"``: the step is done with the result "[SKIPPED: user decision]"; later steps run;
* ``"abort"``: the mission fails.

An answer is a string, or a mapping ``{"action": ..., "explanation": ...}``. With no answer
within ``decision_timeout_secs`` the policy's ``decision_fallback`` applies, with a reason
that says so.

Each question has an id (``question`` in its ``mission_waiting`` event and in the
``escalation_*`` event that answers it). A source that can bind answers to questions (the
store's) has ``bind_question(question)``, called before it is polled, so an answer to an
earlier question never answers this one, and ``settle_timeout(question, step_id, fallback)``,
which claims the question for the fallback and returns None, or the person's action when
their answer claimed the question a moment before the timeout (it wins over the fallback).

With no ``decision_source`` at all (a plain ``Mission.run()`` in a script) nobody can
answer: the mission ends ``stalled`` at once, as an ``escalate`` without an answer does,
with a message that says how to give one.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping

from .context import ANALYSIS_PREFIX
from .errors import describe_error
from .status import MissionStatus

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .contracts import MissionLike
    from .step import MissionStep

#: Seconds between two questions to the decision source.
DECISION_POLL_SECS = 0.2
#: The answers a person can give.
DECISION_ACTIONS = ("retry", "skip", "abort")


def read_answer(answer: Any) -> tuple[str | None, str | None]:
    """``(action, explanation)`` from what a decision source returned (None: no answer)."""
    if answer is None:
        return None, None
    if isinstance(answer, Mapping):
        action, explanation = answer.get("action"), answer.get("explanation")
    else:
        action, explanation = answer, None
    action = str(action).strip().lower() if action is not None else None
    if explanation is not None:
        explanation = str(explanation).strip() or None
    return action, explanation


def ask_for_decision(mission: MissionLike, step: MissionStep) -> tuple[str, str]:
    """Wait for a decision about ``step``; return ``(outcome, reason)``.

    Outcomes: "retry_once", "skip_decided", "abort", "cancelled", or "stall" (nobody can
    answer: ``mission.no_answer_reason`` says why).
    """
    policy = mission.stall_policy
    source = mission.decision_source
    attempts = step.failed_attempts
    if source is None:
        mission.no_answer_reason = (
            "on_max_retries='ask', but nobody can answer here (no decision_source): run it "
            "through a MissionOrchestrator and answer with orch.decide(), or give "
            "Mission(decision_source=...)"
        )
        return "stall", mission.no_answer_reason
    reason = (
        f"waiting for a decision on step {step.id!r} (failed {attempts} attempt(s): "
        f"{step.last_error}); answer retry, skip or abort"
    )
    # Unique per question, also across workers that resume the mission from a checkpoint.
    question = f"{step.id}:{os.urandom(4).hex()}"
    bind = getattr(source, "bind_question", None)
    if bind is not None:
        bind(question)
    mission.waiting_on = step.id
    mission.status = MissionStatus.WAITING
    mission._emit(
        "mission_waiting",
        question=question,
        step_id=step.id,
        waiting_on=step.id,
        reason=reason,
        status="waiting",
        error_message=step.last_error,
        options=list(DECISION_ACTIONS),
        timeout_secs=policy.decision_timeout_secs,
    )
    action, explanation, decided_by = _wait(mission, step, source, question)
    mission.waiting_on = None
    if action == "cancelled":
        mission.status = MissionStatus.RUNNING
        return "cancelled", "cancelled while waiting for a decision"
    if decided_by == "timeout":
        why = f"no decision within {policy.decision_timeout_secs:g} s: fallback {action!r} applied"
    else:
        why = f"decided by a person: {action}"
    fields: dict[str, Any] = {
        "step_id": step.id,
        "question": question,
        "decided_by": decided_by,
        "reason": why,
    }
    if explanation:
        fields["explanation"] = explanation
        step.error_history.append(
            {
                "attempt": attempts,
                "error": f"{ANALYSIS_PREFIX} {explanation}",
                "error_type": "analysis",
                "timestamp": time.time(),
            }
        )
    mission._emit(f"escalation_{action}", **fields)
    if action == "abort":
        return "abort", why
    mission.status = MissionStatus.RUNNING
    mission._emit("mission_resumed", step_id=step.id, status="running", reason=why)
    return ("retry_once" if action == "retry" else "skip_decided"), why


def _wait(
    mission: MissionLike, step: MissionStep, source: Any, question: str
) -> tuple[str, str | None, str]:
    """Poll ``source`` until an answer, the timeout or a cancel: (action, explanation, by)."""
    policy = mission.stall_policy
    timeout = policy.decision_timeout_secs
    ends_at = None if timeout is None else time.monotonic() + timeout
    explanation: str | None = None
    warned = False
    while True:
        try:
            action, given = read_answer(source(step))
        except Exception as exc:
            action, given = None, None
            if not warned:  # once per question: a broken source must not flood the log
                warned = True
                warnings.warn(
                    f"decision_source for step {step.id!r} raised {describe_error(exc)}",
                    RuntimeWarning,
                    stacklevel=2,
                )
        explanation = given or explanation  # an explanation may come before the action
        if action in DECISION_ACTIONS:
            return action, explanation, "person"
        if action is not None and action != "explain":
            mission._emit(
                "decision_refused",
                step_id=step.id,
                error_message=f"unknown decision {action!r}: choose one of "
                + ", ".join(DECISION_ACTIONS),
            )
        wait = DECISION_POLL_SECS
        if ends_at is not None:
            left = ends_at - time.monotonic()
            if left <= 0:
                action, by = _settle_timeout(source, question, step, policy.decision_fallback)
                return action, explanation, by
            wait = min(wait, left)
        if mission._cancel.wait(wait):
            return "cancelled", None, "cancel"


def _settle_timeout(
    source: Any, question: str, step: MissionStep, fallback: str
) -> tuple[str, str]:
    """``(action, by)`` when the time to answer ran out: the fallback, unless the source's
    claim on the question says a person answered first (their answer wins)."""
    settle = getattr(source, "settle_timeout", None)
    if settle is None:
        return fallback, "timeout"
    won = settle(question, step.id, fallback)  # None: the fallback's claim won
    return (fallback, "timeout") if won is None else (str(won), "person")
