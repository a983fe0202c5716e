"""The trace context of a running step: where an instrumented SDK's spans nest.

While a step attempt runs, :func:`current_traceparent` gives the W3C ``traceparent`` of its
mission's root span (``00-<trace id>-<root span id>-01``, the ids ``export_spans`` and the
live export give that root; see :func:`traceparent_of`), in whatever thread or
process runs it (thread, subprocess and Dask backends alike; contextvars, so parallel steps
of different missions never see each other's). When OpenTelemetry is loaded in that
process (``opentelemetry.trace`` imported: by the SDK's instrumentation, or by the module of
the executor), that root is also attached as the current OpenTelemetry context for the
attempt, so spans started in the step join the mission's trace under its root. A subprocess
worker also has ``TRACEPARENT`` in its environment. Standard library only unless
OpenTelemetry is already loaded: the worker imports this module.
"""

from __future__ import annotations

import contextvars
import sys

try:  # CPython's own sha256: hashlib would load OpenSSL (~4 MiB more per worker) for it
    from _sha256 import sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.12+ or another interpreter
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _digest(text: str, size: int) -> int:
    value = int.from_bytes(sha256(text.encode()).digest()[:size], "big")
    return value or 1  # 0 is the invalid id


def trace_id_of(mission_id: str) -> int:
    """The 128-bit trace id of a mission's spans (the same in every process, every time)."""
    return _digest(f"mission_widgets.trace:{mission_id}", 16)


def root_span_id_of(mission_id: str) -> int:
    """The 64-bit span id of a mission's root span (``invoke_workflow``)."""
    return _digest(f"mission_widgets.root:{mission_id}", 8)


def traceparent_of(mission_id: str) -> str:
    """The W3C ``TRACEPARENT`` a mission's worker gets, so the spans of an instrumented SDK
    called in its steps nest under the mission's root span."""
    return f"00-{trace_id_of(mission_id):032x}-{root_span_id_of(mission_id):016x}-01"


_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mission_widgets_traceparent", default=None
)


def current_traceparent() -> str | None:
    """The ``traceparent`` of the running step's mission (None outside a step)."""
    return _traceparent.get()


def enter_trace(mission_id: str) -> tuple[contextvars.Token[str | None], Any]:
    """Set the step's trace context (see the module's docs); give the result to
    :func:`leave_trace` when the attempt ends."""
    token = _traceparent.set(traceparent_of(mission_id))
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return token, None
    from opentelemetry import context

    return token, context.attach(trace.set_span_in_context(root_span(trace, mission_id, True)))


def root_span(trace: Any, mission_id: str, remote: bool = False) -> Any:
    """A mission's root span as a parent (a non-recording span with its derived ids), for
    spans made before the root is (live export) or elsewhere (a step); ``trace`` is the
    ``opentelemetry.trace`` module."""
    parent = trace.SpanContext(
        trace_id=trace_id_of(mission_id),
        span_id=root_span_id_of(mission_id),
        is_remote=remote,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return trace.NonRecordingSpan(parent)


def leave_trace(entered: tuple[contextvars.Token[str | None], Any]) -> None:
    token, attached = entered
    if attached is not None:
        from opentelemetry import context

        context.detach(attached)
    _traceparent.reset(token)
