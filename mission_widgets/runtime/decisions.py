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
    """``mission.decision_source``: ``source(step) -> action | None`` (None: no answer yet).

    ``take()`` returns this mission's new requests (dicts with ``kind`` and ``payload``). An
    explanation hands its text to the mission (a following retry gets it as context) and
    is not an answer by itself.
    """

    def __init__(self, mission: Mission, take: Callable[[], list[dict[str, Any]]]) -> None:
        self.mission = mission
        self.take = take

    def __call__(self, step: MissionStep) -> str | None:
        action = None
        for request in self.take():
            payload = request.get("payload") or {}
            if request["kind"] == "explanation":
                self.mission.add_explanation(step, str(payload.get("text") or ""))
            elif action is None:
                action = payload.get("action")
        return action


class StoreDecisionSource(DecisionSource):
    """Takes the mission's requests from the store's requests table."""

    def __init__(self, store: MissionStore, mission: Mission) -> None:
        super().__init__(mission, lambda: store.take_requests([mission.id], list(DECISION_KINDS)))
