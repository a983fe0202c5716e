"""Live span export: ``MissionOrchestrator(..., tracer_provider=...)``.

While missions run, the orchestrator's watcher reads every event from the store; it hands
them to :class:`LiveSpans`, which folds each mission's events into its
:class:`~..core.timeline.MissionTrace` (the fold ``export_spans`` uses) and emits a span as
soon as it has ended, through the same :class:`~.otel_spans.SpanBuilder` that builds the
after-the-fact export, so both give the same names, attributes, times and ids:

* the ``plan`` span (with its model call) when planning ends;
* a step attempt's span (with its model calls) when the attempt ends;
* the root ``invoke_workflow`` span, with whatever had not ended (an attempt cut short by a
  cancel), when the mission ends.

Children are emitted before their root: their parent is the root's context, whose ids are
derived from the mission id (:func:`~..core.timeline.root_span_id_of`), and the root gets
those ids when it ends (with the SDK's ``TracerProvider``; another provider's root has ids
of its own, so live children would not find it: use export_spans there). A mission adopted
after a restart continues the same trace: its earlier events are read from the store, and
what ended before this orchestrator saw it is left to whoever was watching then.
Imported only when a ``tracer_provider`` is given (it needs the ``[otel]`` extra).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.timeline import IGNORED_EVENTS, MissionTrace, TraceFold
from ..core.tracecontext import root_span
from .otel_spans import SpanBuilder

if TYPE_CHECKING:
    from ..runtime.store import MissionStore

#: Events after which some span of the mission has ended.
_ENDINGS = frozenset({"planner_done", "step_success", "step_failure", "mission_done"})
_PLAN = ("plan", 0)


class _Live:
    """One mission being watched: its fold and the keys of the spans already emitted."""

    def __init__(self, fold: TraceFold) -> None:
        self.fold = fold
        self.emitted: set[tuple[Any, int]] = set()

    def mark_ended(self) -> None:
        """What had ended before this orchestrator watched counts as emitted."""
        trace = self.fold.t
        if trace.plan is not None and trace.plan.end is not None:
            self.emitted.add(_PLAN)
        self.emitted.update((a.step_id, a.attempt) for a in trace.attempts if a.end is not None)

    def due(self, finished: bool) -> MissionTrace | None:
        """The part of the trace whose spans are due now (all that is left when
        ``finished``), marked emitted; None when nothing is."""
        trace = self.fold.t
        plan = trace.plan
        keys: set[tuple[Any, int]] = set()
        if plan is not None and _PLAN not in self.emitted and (finished or plan.end is not None):
            keys.add(_PLAN)
        attempts = [
            a
            for a in trace.attempts
            if (a.step_id, a.attempt) not in self.emitted and (finished or a.end is not None)
        ]
        keys.update((a.step_id, a.attempt) for a in attempts)
        if not keys and not finished:
            return None
        self.emitted |= keys
        claimed = {(a.step_id, a.attempt) for a in trace.attempts}
        calls = []
        for call in trace.model_calls:
            key = (call.step_id, call.attempt or 0)
            if call.step_id is None:
                key = _PLAN
            if key in keys or (finished and key != _PLAN and key not in claimed):
                calls.append(call)  # finished: calls no attempt claims go under the root
        return dataclasses.replace(
            trace,
            plan=plan if _PLAN in keys else None,
            attempts=attempts,
            model_calls=calls,
        )


class _PartsBuilder(SpanBuilder):
    """A SpanBuilder whose root span comes with only the children not emitted yet."""

    part: MissionTrace | None = None

    def _children(self, root: Any, trace: MissionTrace) -> int:
        return 0 if self.part is None else super()._children(root, self.part)

    def emit_part(self, root: Any, part: MissionTrace) -> int:
        """The spans of ``part`` (its plan, attempts, calls) under ``root``."""
        return super()._children(root, part)


class LiveSpans:
    """Emits the spans of the missions whose events it is fed (see the module's docs)."""

    def __init__(self, tracer_provider: Any, store: MissionStore) -> None:
        from opentelemetry import trace

        self.provider = tracer_provider
        self.store = store
        self.trace = trace
        self.missions: dict[str, _Live] = {}

    def feed(self, events: Iterable[dict[str, Any]]) -> None:
        """Fold new events (in store order); emit the spans that ended with them."""
        due: dict[str, bool] = {}
        for event in events:
            mission_id = event.get("mission_id")
            name = event.get("event")
            if not isinstance(mission_id, str) or name in IGNORED_EVENTS:
                continue
            live = self.missions.get(mission_id)
            if live is None:
                live = self.missions[mission_id] = self._adopt(mission_id, event.get("seq"))
            live.fold.feed(event)
            if name in _ENDINGS:
                due[mission_id] = due.get(mission_id, False) or name == "mission_done"
        if due:
            self._emit(due)

    def _adopt(self, mission_id: str, seq: Any) -> _Live:
        """A mission seen for the first time: its row and earlier events (a mission adopted
        after a restart, or one whose first events came before this orchestrator's cursor)."""
        row: Any = self.store.row(mission_id) or {}
        trace = MissionTrace(
            mission_id,
            goal=str(row.get("goal") or ""),
            status=str(row.get("status") or "pending"),
            model=row.get("model"),
            submitted=row.get("submitted_at"),
        )
        live = _Live(TraceFold(trace))
        if isinstance(seq, int):
            for earlier in self.store.events_for(mission_id):
                if (earlier.get("seq") or 0) < seq:
                    live.fold.feed(earlier)
            live.mark_ended()
        return live

    def _emit(self, due: dict[str, bool]) -> None:
        builder = _PartsBuilder(self.provider)
        try:
            for mission_id, finished in due.items():
                live = self.missions[mission_id]
                part = live.due(finished)
                if finished:
                    del self.missions[mission_id]
                    builder.part = part
                    builder.mission(live.fold.t)  # the root, with what is left under it
                elif part is not None:
                    builder.emit_part(root_span(self.trace, mission_id), part)
        finally:
            builder.close()
