"""What the lower core modules ask of a mission, as a Protocol.

``checkpoint``, ``context``, ``decisions`` and ``runner`` work on a :class:`~.mission.Mission`,
while ``mission`` imports them: naming the attributes they use here (below all of them)
keeps the imports one-way. ``Mission`` satisfies :class:`MissionLike`; mypy checks it at
every call site, so an attribute added to one of those modules must be added here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from .events import Event
    from .policy import StallPolicy
    from .session import SharedSession
    from .status import MissionStatus
    from .step import MissionStep
    from .values import LargeValue


class MissionLike(Protocol):
    """The attributes and methods of a Mission that the modules below it use."""

    goal: Any  # a LoadedWhenRead descriptor on Mission: a str once read
    model: Any
    session: SharedSession
    stall_policy: StallPolicy
    budget: Any
    on_budget: str
    usage: Any
    shared_budget: Any
    default_executor: Any
    auto_plan: bool
    backoff_factor: float
    max_parallel: int
    status: MissionStatus
    error: str | None
    stall_reason: str | None
    waiting_on: str | None
    no_answer_reason: str | None
    decision_source: Callable[[MissionStep], Any] | None
    audit_log: list[Event]
    created_at: float
    started_at: float | None
    finished_at: float | None
    checkpoint_path: str | None
    _goal_ref: LargeValue | None
    _active_model: Any
    _cancel: threading.Event

    @property
    def id(self) -> str: ...

    @id.setter
    def id(self, value: str) -> None: ...

    @property
    def steps(self) -> list[MissionStep] | None: ...

    @steps.setter
    def steps(self, value: list[MissionStep] | None) -> None: ...

    def get_step(self, step_id: str) -> MissionStep: ...

    def stored_goal(self) -> Any: ...

    def checkpoint_step(self, step: MissionStep) -> None: ...

    def _emit(self, name: str, **fields: Any) -> Event: ...
