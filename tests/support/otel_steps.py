"""A step executor standing for an instrumented SDK: it starts a span with the OpenTelemetry
API (a TracerProvider of its own, as in a worker) and reports where that span nested.

Importing this module loads ``opentelemetry.trace`` (a worker unpickles the executor, so it
is loaded before the step runs, as an instrumented SDK's import would load it).
"""

from __future__ import annotations

from opentelemetry import trace  # noqa: F401 - loaded before the step: see the docstring
from opentelemetry.sdk.trace import TracerProvider

from mission_widgets.core.tracecontext import current_traceparent


def sdk_span(task, session, context):
    """The step's traceparent, and the trace and parent ids of a span the "SDK" starts."""
    tracer = TracerProvider().get_tracer("instrumented-sdk")
    with tracer.start_as_current_span("sdk call") as span:
        parent = span.parent
    return {  # hex: a 128-bit int does not travel in a Dask event (msgpack)
        "traceparent": current_traceparent(),
        "trace_id": f"{span.context.trace_id:032x}",
        "parent_id": None if parent is None else f"{parent.span_id:016x}",
    }
