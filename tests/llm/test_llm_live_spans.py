"""Live span export, ``MissionOrchestrator(..., tracer_provider=...)``: spans leave while the
mission still runs (the last step's model call is held by a gate in the loopback server),
each as soon as what it stands for has ended, with the parents, names, attributes and times
``export_spans`` gives after the fact; and over OTLP/HTTP to a receiver on 127.0.0.1."""

from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from support.otel import in_memory, otlp_receiver, received_spans
from support.runtime import wait_for

from mission_widgets import Mission
from mission_widgets.orchestrator.otel_spans import root_span_id_of, trace_id_of

GOAL = "Explain the tides to a ten-year-old"
WAIT = 90
BACKENDS = ["thread", "subprocess"]


def gated_server(fake_llm):
    """A server whose reply for the step "write" waits for the returned gate."""
    gate = threading.Event()

    def hold_the_last_step(request):
        if "Write the final answer" in request.prompt:
            assert gate.wait(WAIT), "the test never opened the gate"
        return None  # the default reply

    return fake_llm(usage=(11, 7), handler=hold_the_last_step), gate


def shape(spans):
    """Spans as what does not depend on random span ids: name, parent's name, attributes,
    times, status; sorted."""
    names = {s.context.span_id: s.name for s in spans}
    return sorted(
        (
            s.name,
            None if s.parent is None else names.get(s.parent.span_id, f"{s.parent.span_id:x}"),
            tuple(sorted(s.attributes.items())),
            s.start_time,
            s.end_time,
            s.status.status_code.name,
            tuple(e.name for e in s.events),
        )
        for s in spans
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_spans_leave_while_the_mission_runs_and_equal_the_after_the_fact_export(
    backend, fake_llm, make_model, orchestrators
):
    server, gate = gated_server(fake_llm)
    provider, exporter = in_memory()
    model = make_model(server, name="gpt-4o-mini", timeout=WAIT)
    orch = orchestrators(backend=backend, model=model, tracer_provider=provider)
    mission = Mission(GOAL, backoff_factor=0)
    orch.run_async(mission)

    def names():
        return [s.name for s in exporter.get_finished_spans()]

    wait_for(
        lambda: {"plan", "invoke_agent research", "invoke_agent outline"} <= set(names()),
        WAIT,
        "the first steps' spans",
    )
    assert "invoke_workflow" not in names()  # the mission still runs: the gate holds it
    assert "invoke_agent write" not in names()
    assert orch.store.row(mission.id)["finished_at"] is None
    early = exporter.get_finished_spans()
    assert {s.context.trace_id for s in early} == {trace_id_of(mission.id)}
    under_root = [s for s in early if s.name != "chat gpt-4o-mini"]
    assert {s.parent.span_id for s in under_root} == {root_span_id_of(mission.id)}

    gate.set()
    assert orch.wait(mission.id, WAIT).status == "succeeded"
    wait_for(lambda: "invoke_workflow" in names(), WAIT, "the root span")
    live = exporter.get_finished_spans()
    [root] = [s for s in live if s.name == "invoke_workflow"]
    assert root.parent is None and root.context.span_id == root_span_id_of(mission.id)
    assert len(live) == 1 + 1 + 3 + 4  # root, plan, three attempts, four model calls

    after, exported = in_memory()
    orch.export_spans(after, ids=mission.id)
    assert shape(live) == shape(exported.get_finished_spans())


def test_live_spans_reach_an_otlp_http_receiver_while_the_mission_runs(
    fake_llm, make_model, orchestrators
):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server, gate = gated_server(fake_llm)
    with otlp_receiver() as (endpoint, got):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        model = make_model(server, name="gpt-4o-mini", timeout=WAIT)
        orch = orchestrators(backend="subprocess", model=model, tracer_provider=provider)
        mission = Mission(GOAL, backoff_factor=0)
        orch.run_async(mission)
        wait_for(
            lambda: "invoke_agent outline" in {s.name for s in received_spans(got)},
            WAIT,
            "a step's span at the receiver",
        )
        assert "invoke_workflow" not in {s.name for s in received_spans(got)}
        gate.set()
        assert orch.wait(mission.id, WAIT).status == "succeeded"
        wait_for(
            lambda: "invoke_workflow" in {s.name for s in received_spans(got)},
            WAIT,
            "the root span at the receiver",
        )
        provider.shutdown()
    spans = received_spans(got)
    assert len(spans) == 9
    assert {int.from_bytes(s.trace_id, "big") for s in spans} == {trace_id_of(mission.id)}


def test_no_tracer_provider_imports_no_opentelemetry(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mission_widgets import Mission, MissionOrchestrator\n"
        f"orch = MissionOrchestrator(backend='thread', store={str(tmp_path / 's')!r})\n"
        "orch.run_async(Mission('x', steps=[{'id': 'a', 'description': 'a'}],"
        " executor=lambda t, s, c: 1)).wait(timeout=60)\n"
        "orch.poll_async()\n"
        "orch.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
