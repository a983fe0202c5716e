"""orch.export_spans(): missions as OpenTelemetry GenAI spans, from the store's events with
their real times: checked in the SDK's in-memory exporter, and sent with the OTLP/HTTP
exporter to a receiver on 127.0.0.1 that decodes the protobuf it gets."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from support.executors import Fail
from support.otel import check_nested_under_root, in_memory, otlp_receiver, received_spans
from support.runtime import store_events

from mission_widgets import Mission, MissionStep
from mission_widgets.orchestrator.otel_spans import root_span_id_of, trace_id_of

GOAL = "Explain the tides to a ten-year-old"
WAIT = 60


def llm_mission(fake_llm, make_model, orchestrators):
    server = fake_llm(usage=(11, 7))
    orch = orchestrators(backend="thread", model=make_model(server, name="gpt-4o-mini"))
    mission = orch.run_async(Mission(GOAL, backoff_factor=0)).wait(timeout=WAIT)
    assert mission.status == "succeeded", mission.error
    return orch, mission


def test_a_planned_llm_mission_is_a_tree_of_genai_spans_with_the_events_times(
    fake_llm, make_model, orchestrators, store_dir
):
    _orch, mission = llm_mission(fake_llm, make_model, orchestrators)
    provider, exporter = in_memory()
    later = orchestrators(backend="thread")  # another orchestrator: only the store

    assert later.export_spans(provider, ids=[mission.id]) == 1 + 1 + 1 + 3 + 3
    spans = exporter.get_finished_spans()
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [root] = by_name["invoke_workflow"]
    [plan] = by_name["plan"]
    assert root.parent is None
    assert root.context.trace_id == trace_id_of(mission.id)
    assert root.context.span_id == root_span_id_of(mission.id)
    assert {s.context.trace_id for s in spans} == {trace_id_of(mission.id)}
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["mission_widgets.mission_id"] == mission.id
    assert plan.parent.span_id == root.context.span_id

    agents = by_name["invoke_agent research"] + by_name["invoke_agent outline"]
    agents += by_name["invoke_agent write"]
    assert all(a.parent.span_id == root.context.span_id for a in agents)
    chats = by_name["chat gpt-4o-mini"]
    assert len(chats) == 4
    parents = {c.parent.span_id for c in chats}
    assert parents == {plan.context.span_id} | {a.context.span_id for a in agents}
    for chat in chats:
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.attributes["gen_ai.usage.input_tokens"] == 11
        assert chat.attributes["gen_ai.usage.output_tokens"] == 7
        assert chat.attributes["mission_widgets.cost_usd"] == pytest.approx(
            (11 * 0.15 + 7 * 0.60) / 1e6
        )

    events = [e for e in store_events(store_dir) if e["mission_id"] == mission.id]
    at = {e["event"]: e["timestamp"] for e in events}  # the last of each name
    assert root.start_time == int(
        next(e["timestamp"] for e in events if e["event"] == "mission_start") * 1e9
    )
    assert root.end_time == int(at["mission_done"] * 1e9)
    starts = {
        (e["payload"]["step_id"]): e["timestamp"] for e in events if e["event"] == "step_start"
    }
    for agent in agents:
        step = agent.attributes["mission_widgets.step_id"]
        assert agent.start_time == int(starts[step] * 1e9)
        assert agent.start_time <= agent.end_time

    # exported again (a reattached kernel): the same trace
    again = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(again))
    later.export_spans(provider, ids=mission.id)
    assert {s.context.trace_id for s in again.get_finished_spans()} == {trace_id_of(mission.id)}


def test_failed_attempts_carry_error_type_and_waits_are_span_events(orchestrators):
    orch = orchestrators(backend="thread")
    mission = Mission(
        "fails",
        steps=[MissionStep("tool", "breaks", Fail("disk full"), max_retries=1)],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    )
    mission = orch.run_async(mission).wait(timeout=WAIT)
    assert mission.status == "failed"
    provider, exporter = in_memory()
    orch.export_spans(provider)

    tools = [s for s in exporter.get_finished_spans() if s.name == "execute_tool tool"]
    assert len(tools) == 2  # two attempts
    for span in tools:
        assert span.attributes["gen_ai.tool.name"] == "tool"
        assert span.attributes["error.type"] == "execution_error"
        assert span.status.status_code == StatusCode.ERROR
    [root] = [s for s in exporter.get_finished_spans() if s.name == "invoke_workflow"]
    assert root.attributes["error.type"] == "mission_failed"
    assert [e.name for e in root.events] == ["backoff"]


def test_the_otlp_http_exporter_sends_what_a_receiver_decodes(fake_llm, make_model, orchestrators):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    orch, mission = llm_mission(fake_llm, make_model, orchestrators)
    with otlp_receiver() as (endpoint, got):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        orch.export_spans(provider)
        provider.shutdown()

    spans = received_spans(got)
    assert len(spans) == 9
    trace_ids = {int.from_bytes(s.trace_id, "big") for s in spans}
    assert trace_ids == {trace_id_of(mission.id)}
    chat = next(s for s in spans if s.name == "chat gpt-4o-mini")
    attributes = {a.key: a.value for a in chat.attributes}
    assert attributes["gen_ai.usage.input_tokens"].int_value == 11
    assert attributes["gen_ai.request.model"].string_value == "gpt-4o-mini"
    assert chat.start_time_unix_nano < chat.end_time_unix_nano


def test_a_worker_gets_a_traceparent_under_its_missions_root_span(orchestrators):
    from support.executors import echo_environment

    orch = orchestrators(backend="subprocess")
    mission = Mission(
        "reads its TRACEPARENT",
        steps=[MissionStep("env", "TRACEPARENT", echo_environment)],
    )
    mission = orch.run_async(mission).wait(timeout=WAIT)
    assert mission.status == "succeeded", mission.error
    provider, exporter = in_memory()
    orch.export_spans(provider)
    [root] = [s for s in exporter.get_finished_spans() if s.name == "invoke_workflow"]
    version, trace_id, parent_id, flags = mission.steps[0].result.split("-")
    assert (version, flags) == ("00", "01")
    assert int(trace_id, 16) == root.context.trace_id
    assert int(parent_id, 16) == root.context.span_id


@pytest.mark.parametrize("backend", ["thread", "subprocess"])
def test_an_instrumented_sdks_span_in_a_step_nests_under_the_missions_root(backend, orchestrators):
    from support.otel_steps import sdk_span

    orch = orchestrators(backend=backend)
    mission = Mission("calls an instrumented SDK", steps=[MissionStep("sdk", "span", sdk_span)])
    mission = orch.run_async(mission).wait(timeout=WAIT)
    assert mission.status == "succeeded", mission.error
    check_nested_under_root(orch, mission)


def test_outside_a_step_there_is_no_traceparent():
    from mission_widgets.core.tracecontext import current_traceparent

    assert current_traceparent() is None
