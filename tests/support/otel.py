"""OpenTelemetry helpers of the span tests: the SDK's in-memory exporter, and an OTLP/HTTP
receiver on 127.0.0.1 whose protobuf bodies are decoded into spans."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def in_memory():
    """A TracerProvider whose spans go to the returned in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


class _Receiver(BaseHTTPRequestHandler):
    got: list[bytes]

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.server.got.append((self.path, self.headers["Content-Type"], self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def otlp_receiver():
    """An OTLP/HTTP receiver on 127.0.0.1: yields (its endpoint, the list of (path,
    content type, body) it got)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.got = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", server.got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def received_spans(got):
    """The spans of what a receiver got, decoded from protobuf."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    spans = []
    for path, kind, body in list(got):
        assert path == "/v1/traces" and kind == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                assert scope.scope.name == "mission_widgets"
                spans += list(scope.spans)
    return spans


def check_nested_under_root(orch, mission):
    """The step's traceparent and its SDK span's parent are the root span export_spans makes."""
    provider, exporter = in_memory()
    orch.export_spans(provider, ids=mission.id)
    [root] = [s for s in exporter.get_finished_spans() if s.name == "invoke_workflow"]
    seen = mission.steps[0].result
    trace_id, root_id = f"{root.context.trace_id:032x}", f"{root.context.span_id:016x}"
    assert seen["traceparent"] == f"00-{trace_id}-{root_id}-01"
    assert (seen["trace_id"], seen["parent_id"]) == (trace_id, root_id)
