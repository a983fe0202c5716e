"""Missions as OpenTelemetry spans, after the GenAI semantic conventions (the ``[otel]`` extra).

Built from the store's events (:class:`~..core.timeline.MissionTrace`), with their real start
and end times, so a mission that ended while the kernel was down exports after the fact:

* a root span ``invoke_workflow`` per mission (``gen_ai.operation.name``, the goal, the
  status; ``error.type`` and an error status when it did not succeed);
* ``plan`` (planning) with its model call as a child;
* a span per step attempt: ``invoke_agent <step>`` when the model carried it out (it made
  model calls), else ``execute_tool <step>``; ``error.type`` when the attempt failed;
* model calls as ``chat <model>`` spans (``gen_ai.request.model``, ``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``, ``mission_widgets.cost_usd``) under
  their attempt (or under ``plan``);
* waits for a person, decisions, stall flags, recoveries, backoffs, budget refusals and
  cancels as span events of the root.

Trace ids are derived from mission ids (:func:`trace_id_of`), so spans exported twice, or
from a reattached kernel, belong to the same trace. With the SDK's ``TracerProvider`` the
root span's id is derived too; with another provider the ids are the provider's own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from ..core.timeline import MissionTrace, ModelCall
from ..core.tracecontext import root_span_id_of, trace_id_of

#: ``gen_ai.operation.name`` values (GenAI semantic conventions).
WORKFLOW, AGENT, TOOL, CHAT = "invoke_workflow", "invoke_agent", "execute_tool", "chat"
_INSTRUMENTATION = "mission_widgets"


class _MissionIds:
    """An SDK id generator that gives a mission's trace and root span their derived ids
    (then random span ids for the rest), one mission at a time."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback
        self.trace_id: int | None = None
        self.root_span_id: int | None = None

    def generate_trace_id(self) -> int:
        return self.trace_id if self.trace_id is not None else self.fallback.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return self.trace_id is None

    def generate_span_id(self) -> int:
        if self.root_span_id is not None:
            span_id, self.root_span_id = self.root_span_id, None
            return span_id
        return self.fallback.generate_span_id()


def _ns(t: float) -> int:
    return int(t * 1e9)


def _model_parts(model: str | None) -> tuple[str | None, str | None]:
    if not model:
        return None, None
    provider, _, name = model.partition(":")
    return (provider, name) if name else (None, provider)


def _chat_of(model: str | None) -> tuple[str, dict[str, Any]]:
    """A model's chat span name and the attributes all its calls share."""
    provider, name = _model_parts(model)
    attributes: dict[str, Any] = {"gen_ai.operation.name": CHAT}
    if name is not None:
        attributes["gen_ai.request.model"] = name
    if provider is not None:
        attributes["gen_ai.provider.name"] = attributes["gen_ai.system"] = provider
    return f"{CHAT} {name or 'model'}", attributes


def _chat_attributes(call: ModelCall, shared: dict[str, Any]) -> dict[str, Any]:
    attributes = dict(shared)
    for key, value in (
        ("gen_ai.usage.input_tokens", call.prompt_tokens),
        ("gen_ai.usage.output_tokens", call.completion_tokens),
        ("mission_widgets.cost_usd", call.cost_usd),
        ("mission_widgets.purpose", call.purpose),
    ):
        if value is not None:
            attributes[key] = value
    return attributes


class SpanBuilder:
    """Writes traces as spans through one tracer (see the module's docstring).

    Many missions make many spans: what is the same for many of them (a parent's context,
    a model's name and attributes) is made once, so what a span costs is mostly the SDK's."""

    def __init__(self, tracer_provider: Any = None, now: float | None = None) -> None:
        from opentelemetry import trace

        provider: Any = tracer_provider or trace.get_tracer_provider()
        self.trace = trace
        self.tracer: Any = provider.get_tracer(_INSTRUMENTATION)
        self.now = time.time() if now is None else now
        self.saved = getattr(self.tracer, "id_generator", None)
        self.ids = _MissionIds(self.saved) if self.saved is not None else None
        if self.ids is not None:
            self.tracer.id_generator = self.ids  # the SDK's tracer asks it for new ids
        self.in_context = trace.set_span_in_context
        self.no_parent = trace.set_span_in_context(trace.INVALID_SPAN)
        self.models: dict[str | None, tuple[str, dict[str, Any]]] = {}

    def close(self) -> None:
        """Give the (shared, cached) tracer its own id generator back."""
        if self.ids is not None:
            self.tracer.id_generator = self.saved

    def _end(self, t: float | None) -> int:
        return _ns(t if t is not None else self.now)

    def _fail(self, span: Any, error_type: str | None, message: str | None) -> None:
        span.set_attribute("error.type", error_type or "error")
        span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, message or error_type))

    def mission(self, trace: MissionTrace) -> int:
        """Emit one mission's spans; returns how many."""
        if trace.start is None:
            return 0
        if self.ids is not None:
            self.ids.trace_id = trace_id_of(trace.mission_id)
            self.ids.root_span_id = root_span_id_of(trace.mission_id)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": WORKFLOW,
            "mission_widgets.mission_id": trace.mission_id,
            "mission_widgets.goal": trace.goal,
            "mission_widgets.status": trace.status,
            "mission_widgets.tokens": trace.tokens,
        }
        if trace.model_calls and trace.cost_usd == trace.cost_usd:
            attributes["mission_widgets.cost_usd"] = trace.cost_usd
        root = self.tracer.start_span(
            WORKFLOW,
            context=self.no_parent,
            start_time=_ns(trace.start),
            attributes=attributes,
        )
        if self.ids is not None:
            self.ids.trace_id = None  # children inherit it from the root
        count = 1 + self._children(root, trace)
        for iv in trace.intervals:
            extra = {"step_id": iv.step_id or "", "detail": iv.label or ""}
            root.add_event(iv.kind, attributes=extra, timestamp=_ns(iv.start))
            if iv.kind == "wait" and iv.end is not None:
                root.add_event("decision", attributes=extra, timestamp=_ns(iv.end))
        for mark in trace.marks:
            extra = {"step_id": mark.step_id or "", "detail": mark.label or ""}
            root.add_event(mark.kind, attributes=extra, timestamp=_ns(mark.at))
        if trace.status not in ("succeeded", "running", "pending", "planning"):
            self._fail(root, f"mission_{trace.status}", trace.error)
        root.end(end_time=self._end(trace.end))
        return count

    def _children(self, root: Any, trace: MissionTrace) -> int:
        count = 0
        calls_of: dict[tuple[str | None, int | None], list[ModelCall]] = {}
        for call in trace.model_calls:
            calls_of.setdefault((call.step_id, call.attempt), []).append(call)
        under_root = self.in_context(root)
        start_span = self.tracer.start_span
        if trace.plan is not None:
            plan = start_span(
                "plan",
                context=under_root,
                start_time=_ns(trace.plan.start),
                attributes={"gen_ai.operation.name": "plan"},
            )
            plan_calls = calls_of.pop((None, None), []) + calls_of.pop((None, 1), [])
            count += 1 + self._calls(plan, plan_calls)
            if trace.plan.error_type:
                self._fail(plan, trace.plan.error_type, None)
            plan.end(end_time=self._end(trace.plan.end))
        for attempt in trace.attempts:
            calls = calls_of.pop((attempt.step_id, attempt.attempt), None)
            operation = AGENT if calls else TOOL
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "mission_widgets.step_id": attempt.step_id,
                "mission_widgets.attempt": attempt.attempt,
                "mission_widgets.outcome": attempt.outcome,
                "gen_ai.agent.name" if calls else "gen_ai.tool.name": attempt.step_id,
            }
            span = start_span(
                f"{operation} {attempt.step_id}",
                context=under_root,
                start_time=_ns(attempt.start),
                attributes=attributes,
            )
            count += 1
            if calls:
                count += self._calls(span, calls)
            if attempt.outcome not in ("succeeded", "running"):
                self._fail(span, attempt.error_type or attempt.outcome, attempt.error_message)
            span.end(end_time=self._end(attempt.end))
        for calls in calls_of.values():  # calls no attempt claims (e.g. an older event)
            count += self._calls(root, calls, under_root)
        return count

    def _calls(self, parent: Any, calls: list[ModelCall], context: Any = None) -> int:
        if not calls:
            return 0
        under = self.in_context(parent) if context is None else context
        start_span, models = self.tracer.start_span, self.models
        for call in calls:
            chat = models.get(call.model)
            if chat is None:
                chat = models[call.model] = _chat_of(call.model)
            span = start_span(
                chat[0],
                context=under,
                start_time=_ns(call.start),
                attributes=_chat_attributes(call, chat[1]),
            )
            span.end(end_time=_ns(call.end))
        return len(calls)


def export_spans(traces: Sequence[MissionTrace], tracer_provider: Any = None) -> int:
    """Emit the spans of ``traces`` through ``tracer_provider`` (the global one by default);
    returns how many spans were made."""
    builder = SpanBuilder(tracer_provider)
    try:
        return sum(builder.mission(trace) for trace in traces)
    finally:
        builder.close()
