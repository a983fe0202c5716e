"""Decisions by a person, worker side: the answers a waiting mission reads.

The kernel (``orch.decide`` / ``orch.explain``, the CLI, the panel) adds a request to the
store's requests table. A mission that waits for a person polls its ``decision_source``;
the :class:`DecisionSource` set there takes this mission's requests, each exactly once:
from the store (:class:`StoreDecisionSource`: subprocess worker, thread backend), or as the
Dask kernel side forwarded them to the worker (``dask_child.ForwardedRequests.take``).
Imported by the worker: keep it lean.
"""

from __future__ import annotations

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..core.mission import Mission
    from ..core.step import MissionStep
    from .store import MissionStore

#: Request kinds a waiting mission takes.
DECISION_KINDS = ("decision", "explanation")


class DecisionSource:
    """``mission.decision_source``: ``source(step) -> answer | None`` (None: no answer yet).

    ``take()`` returns this mission's new requests (dicts with ``kind`` and ``payload``). The
    answer is the decision's action, or ``{"action": action or None, "explanation": text}``
    when an explanation came (core.decisions keeps an explanation that comes before the
    action, and gives it to the retry as context).
    """

    def __init__(self, mission: Mission, take: Callable[[], list[dict[str, Any]]]) -> None:
        self.mission = mission
        self.take = take
        #: The question asked now (core.decisions binds it): a decision for another one is
        #: late and answers nothing.
        self.question: str | None = None

    def bind_question(self, question: str) -> None:
        self.question = question

    def __call__(self, step: MissionStep) -> str | dict[str, str | None] | None:
        action = explanation = None
        for request in self.take():
            payload = request.get("payload") or {}
            asked = payload.get("question")
            if asked is not None and self.question is not None and asked != self.question:
                continue  # an answer to an earlier question (decide() binds every answer)
            if request["kind"] == "explanation":
                explanation = str(payload.get("text") or "") or explanation
            elif action is None:
                action = payload.get("action")
        if explanation is None:
            return action
        return {"action": action, "explanation": explanation}


class StoreDecisionSource(DecisionSource):
    """Takes the mission's requests from the store's requests table; a question whose time
    ran out is claimed in the store for the fallback, so exactly one answer counts."""

    def __init__(self, store: MissionStore, mission: Mission) -> None:
        super().__init__(mission, lambda: store.take_requests([mission.id], list(DECISION_KINDS)))
        self.store = store

    def settle_timeout(self, question: str, step_id: str, fallback: str) -> str | None:
        """Claim ``question`` for ``fallback``; None when that claim won, else the action a
        person claimed first (its request is taken now, so it answers nothing later)."""
        first = self.store.claim_decision(
            self.mission.id,
            question,
            step_id=step_id,
            action=fallback,
            decided_by="timeout (decision_fallback)",
        )
        if first is None:
            return None
        self.take()
        return str(first["action"])
