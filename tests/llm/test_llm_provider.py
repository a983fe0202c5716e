"""OpenAIModel against a real HTTP server on 127.0.0.1, through the real openai SDK, in-process."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import time

import cloudpickle
import pytest

from mission_widgets import Mission, MissionStep, ModelResolutionError, SharedSession
from mission_widgets.core.errors import classify_error
from mission_widgets.core.mission import MEMORY_CONTEXT_CHARS, memory_context
from mission_widgets.core.models import LazyModel, registered_providers, resolve_model
from mission_widgets.core.planning import PLAN_PROMPT_HEADER, plan_prompt
from mission_widgets.core.providers import OpenAIModel
from mission_widgets.core.providers.openai_provider import PLACEHOLDER_KEY
from mission_widgets.testing import Reply
from mission_widgets.testing.fake_llm import FAKE_LABEL

GOAL = "Explain the tides to a ten-year-old"


def events(mission: Mission, name: str) -> list[dict]:
    return [e for e in mission.audit_log if e["event"] == name]


def one_step_mission(model, **step_options) -> Mission:
    step_options.setdefault("max_retries", 0)
    return Mission(
        GOAL,
        steps=[MissionStep("answer", "Answer the question", **step_options)],
        model=model,
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    )


# -- a whole mission -------------------------------------------------------------------------


def test_good_plan_then_steps_with_usage_events(fake_llm, make_model):
    server = fake_llm(usage=(11, 7))
    model = make_model(server)
    mission = Mission(GOAL, model=model, backoff_factor=0).run()

    assert mission.status == "succeeded", mission.error
    assert [s.id for s in mission.steps] == ["research", "outline", "write"]
    assert all(s.result.startswith(FAKE_LABEL) for s in mission.steps)
    assert "CURRENT STEP (write)" in mission.get_step("write").result

    calls = events(mission, "model_call")
    assert len(calls) == 4
    assert [c["purpose"] for c in calls].count("plan") == 1
    plan_call = next(c for c in calls if c["purpose"] == "plan")
    assert plan_call["step_id"] is None and plan_call["json_mode"] is True
    assert {c["step_id"] for c in calls if c["purpose"] == "step"} == {
        "research",
        "outline",
        "write",
    }
    for call in calls:
        assert call["model"] == "openai:fake-model"
        usage = (call["prompt_tokens"], call["completion_tokens"], call["total_tokens"])
        assert usage == (11, 7, 18)
        assert call["duration_ms"] >= 0
    assert model.usage == {"calls": 4, "prompt_tokens": 44, "completion_tokens": 28}

    requests = server.chat_requests
    assert len(requests) == 4
    plan_request, *step_requests = requests
    assert plan_request.is_planning and plan_request.wants_json_object
    assert plan_request.messages[0]["role"] == "system"
    assert '{"steps"' in plan_request.messages[0]["content"]
    assert plan_request.body["model"] == "fake-model"
    assert all(not r.wants_json_object for r in step_requests)
    assert all(r.authorization == "Bearer sk-test-key" for r in requests)
    write_prompt = next(r.prompt for r in step_requests if "CURRENT STEP (write)" in r.prompt)
    assert write_prompt.startswith(f"MISSION GOAL: {GOAL}")
    assert "RESULTS OF EARLIER STEPS:" in write_prompt
    assert "- research: " + FAKE_LABEL in write_prompt
    assert "- outline: " + FAKE_LABEL in write_prompt


def test_plan_with_a_cycle_fails_the_mission_naming_the_cycle(fake_llm, make_model):
    cycle = [
        {"id": "a", "description": "first", "depends_on": ["b"]},
        {"id": "b", "description": "second", "depends_on": ["a"]},
    ]
    server = fake_llm(Reply.plan(cycle, wrap=True))
    mission = Mission(GOAL, model=make_model(server)).run()

    assert mission.status == "failed"
    assert mission.error.startswith("PlanError: invalid plan: dependency cycle: a -> b -> a")
    done = events(mission, "planner_done")
    assert done[-1]["error_type"] == "plan_error"
    assert len(server.chat_requests) == 1


def test_invalid_json_plan_fails_the_mission_quoting_the_reply(fake_llm, make_model):
    server = fake_llm(Reply.text("Sure! First research the moon, then write it up."))
    mission = Mission(GOAL, model=make_model(server)).run()

    assert mission.status == "failed"
    assert mission.error.startswith("PlanError: the plan is not valid JSON")
    assert "First research the moon" in mission.error


def test_rate_limit_is_retried_by_the_sdk_then_succeeds(fake_llm, make_model):
    server = fake_llm(Reply.rate_limited(retry_after_ms=5))
    mission = Mission(GOAL, model=make_model(server, max_retries=2), backoff_factor=0).run()

    assert mission.status == "succeeded", mission.error
    requests = server.chat_requests
    assert len(requests) == 5  # the 429, its retry, then three steps
    assert requests[0].is_planning and requests[1].is_planning
    assert requests[0].body == requests[1].body
    assert not events(mission, "step_failure")
    assert len(events(mission, "model_call")) == 4


def test_rate_limit_without_sdk_retries_is_retried_by_the_step(fake_llm, make_model):
    server = fake_llm(Reply.rate_limited())
    mission = one_step_mission(make_model(server, max_retries=0), max_retries=1).run()

    assert mission.status == "succeeded", mission.error
    step = mission.get_step("answer")
    assert step.retry_count == 1
    assert step.error_history[0]["error_type"] == "execution_error"
    assert "RateLimitError" in step.error_history[0]["error"]
    assert "429" in step.error_history[0]["error"]
    assert len(server.chat_requests) == 2
    assert "PREVIOUS ATTEMPT(S) FAILED" in server.chat_requests[1].prompt


def test_401_fails_the_step_as_permission_without_retrying(fake_llm, make_model):
    server = fake_llm(Reply.error(401, "Incorrect API key provided"))
    mission = one_step_mission(make_model(server, max_retries=2)).run()

    assert mission.status == "failed"
    step = mission.get_step("answer")
    assert step.status == "failed"
    assert step.error_history[0]["error_type"] == "permission"
    assert step.error_history[0]["error"].startswith("AuthenticationError")
    failure = events(mission, "step_failure")[0]
    assert failure["error_type"] == "permission"
    assert len(server.chat_requests) == 1  # the SDK does not retry a 401


def test_401_while_planning_fails_the_mission(fake_llm, make_model):
    server = fake_llm(Reply.error(401))
    mission = Mission(GOAL, model=make_model(server)).run()
    assert mission.status == "failed"
    assert mission.error.startswith("AuthenticationError")


@pytest.mark.parametrize(
    ("reply", "error_type", "error_name"),
    [
        (Reply.error(401), "permission", "AuthenticationError"),
        (Reply.error(403), "permission", "PermissionDeniedError"),
        (Reply.error(404), "missing_resource", "NotFoundError"),
        (Reply.error(422), "execution_error", "UnprocessableEntityError"),
        (Reply.rate_limited(), "execution_error", "RateLimitError"),
        (Reply.error(500), "execution_error", "InternalServerError"),
        (Reply(status=200, raw=b"this is not json"), "execution_error", None),
    ],
)
def test_http_errors_are_classified(fake_llm, make_model, reply, error_type, error_name):
    server = fake_llm(reply)
    model = make_model(server)
    with pytest.raises(Exception) as info:
        model.generate("Say hello")
    if error_name:
        assert type(info.value).__name__ == error_name
    assert classify_error(info.value) == error_type


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, "permission"), (403, "permission"), (404, "missing_resource")],
)
def test_403_and_404_are_classified_by_their_status_not_their_text(
    fake_llm, make_model, status, error_type
):
    """The server's text names neither the code nor a word a text match knows (the fake's
    default texts): a step failing this way is reported as the user's problem (a key, a
    model name), and a retry policy keyed on the error type sees it."""
    server = fake_llm(Reply.error(status))
    mission = one_step_mission(make_model(server)).run()

    assert mission.status == "failed"
    failure = mission.get_step("answer").error_history[0]
    assert failure["error_type"] == error_type
    assert events(mission, "step_failure")[0]["error_type"] == error_type


def test_slow_reply_hits_the_client_timeout(fake_llm, make_model):
    server = fake_llm(Reply.slow(30))
    mission = one_step_mission(make_model(server, timeout=0.5, max_retries=0))
    started = time.monotonic()
    mission.run()
    elapsed = time.monotonic() - started

    assert elapsed < 10
    step = mission.get_step("answer")
    assert step.status == "skipped"  # a timeout is skipped by the default on_step_timeout
    assert step.error_history[0]["error_type"] == "timeout"
    assert step.error_history[0]["error"].startswith("APITimeoutError")
    assert events(mission, "step_failure")[0]["error_type"] == "timeout"


def test_connection_refused_is_an_execution_error(fake_llm, make_model):
    server = fake_llm()
    model = make_model(server)
    server.stop()
    with pytest.raises(Exception) as info:
        model.generate("Say hello")
    assert type(info.value).__name__ == "APIConnectionError"
    assert classify_error(info.value) == "execution_error"


def test_server_without_json_mode_gets_plain_prompts(fake_llm, make_model):
    server = fake_llm(reject_response_format=True)
    model = make_model(server)
    first = Mission(GOAL, model=model, backoff_factor=0).run()
    assert first.status == "succeeded", first.error
    requests = server.chat_requests
    assert requests[0].wants_json_object  # rejected with a 400
    assert requests[1].is_planning and "response_format" not in requests[1].body
    assert "JSON array of steps only" in requests[1].messages[0]["content"]
    assert events(first, "model_call")[0]["json_mode"] is False

    before = len(server.chat_requests)
    second = Mission("Another goal", model=model, backoff_factor=0).run()
    assert second.status == "succeeded", second.error
    assert "response_format" not in server.chat_requests[before].body  # remembered


@pytest.mark.parametrize("status", [400, 422])
def test_server_rejecting_json_mode_with_400_or_422_is_asked_again_without_it(
    fake_llm, make_model, status
):
    server = fake_llm(reject_response_format=status)
    mission = Mission(GOAL, model=make_model(server), backoff_factor=0).run()

    assert mission.status == "succeeded", mission.error
    first, second = server.chat_requests[:2]
    assert first.wants_json_object
    assert second.is_planning and "response_format" not in second.body
    assert events(mission, "model_call")[0]["json_mode"] is False


def test_a_400_after_json_mode_worked_is_not_retried_without_it(fake_llm, make_model):
    server = fake_llm()
    model = make_model(server)
    assert model.generate(plan_prompt("goal one"))
    server.add_script(Reply.error(400, "context length exceeded"))
    with pytest.raises(Exception) as info:
        model.generate(plan_prompt("goal two"))
    assert type(info.value).__name__ == "BadRequestError"
    assert len(server.chat_requests) == 2


def test_json_mode_off_sends_no_response_format(fake_llm, make_model):
    server = fake_llm()
    mission = Mission(GOAL, model=make_model(server, json_mode=False, temperature=0.2)).run()
    assert mission.status == "succeeded", mission.error
    assert all("response_format" not in r.body for r in server.chat_requests)
    assert all(r.body["temperature"] == 0.2 for r in server.chat_requests)


def test_reply_without_usage_still_emits_model_call(fake_llm, make_model):
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }
    server = fake_llm(Reply(body=body))
    mission = one_step_mission(make_model(server)).run()
    assert mission.status == "succeeded", mission.error
    call = events(mission, "model_call")[0]
    assert call["prompt_tokens"] is None and call["completion_tokens"] is None


# -- session memory in step prompts ----------------------------------------------------------


def test_step_prompts_carry_relevant_session_memory(fake_llm, make_model):
    server = fake_llm()
    session = SharedSession()
    session.set_memory("reading_level", "ages 9-11")
    session.set_memory("style", {"tone": "playful", "max_words": 120})
    session.set_memory("_api_token", "must-not-be-shown")
    seen_contexts = []

    def tool(task, session, context):
        seen_contexts.append(context)
        return "tool result"

    mission = Mission(
        GOAL,
        steps=[
            MissionStep("facts", "List facts at the reading level", executor=tool),
            MissionStep("draft", "Write the draft", depends_on=["facts"]),
        ],
        model=make_model(server),
        session=session,
        backoff_factor=0,
    ).run()

    assert mission.status == "succeeded", mission.error
    assert seen_contexts == [None]  # executors have the session itself, not a memory dump
    prompt = server.chat_requests[0].prompt
    assert "SHARED SESSION MEMORY:" in prompt
    assert "- reading_level: ages 9-11" in prompt
    assert '- style: {"tone": "playful", "max_words": 120}' in prompt
    assert "_api_token" not in prompt and "must-not-be-shown" not in prompt
    assert prompt.index("RESULTS OF EARLIER STEPS") < prompt.index("SHARED SESSION MEMORY")


def test_memory_context_is_bounded_and_puts_mentioned_keys_first():
    memory = {f"note_{i:02d}": "x" * 100 for i in range(60)}
    memory["glossary"] = "y" * 5000
    text = memory_context(memory, "Use the glossary to define terms")
    assert text.startswith("SHARED SESSION MEMORY:\n- glossary: " + "y" * 500 + " ...")
    assert len(text) <= MEMORY_CONTEXT_CHARS + 200
    assert text.endswith("more entries not shown)")
    assert memory_context({}, "anything") is None
    assert memory_context({"_hidden": 1}, "anything") is None
    assert memory_context({"topic_words": "a"}, "the topic words").startswith(
        "SHARED SESSION MEMORY:\n- topic_words: a"
    )


# -- keys, pickling, configuration -------------------------------------------------------------


def test_explicit_key_never_pickles_and_still_works_after_unpickling(fake_llm, make_model):
    key = "sk-explicit-0123456789abcdef"
    server = fake_llm()
    model = make_model(server, api_key=key)
    session = SharedSession(model=model)
    mission = Mission(GOAL, model=model, session=session)
    for blob in (
        pickle.dumps(model),
        cloudpickle.dumps(model),
        cloudpickle.dumps(mission),
        cloudpickle.dumps(session),
    ):
        assert key.encode() not in blob
    assert key not in repr(model) and key not in repr(mission) and key not in repr(session)
    assert key not in str(vars(model).get("api_key_env"))
    assert os.environ[model.api_key_env] == key  # the private variable workers inherit

    clone = pickle.loads(pickle.dumps(model))
    try:
        assert clone.generate("Say hello").startswith(FAKE_LABEL)
    finally:
        clone.close()
    twin = copy.deepcopy(model)
    try:
        assert twin.generate("Say hello").startswith(FAKE_LABEL)
    finally:
        twin.close()
    assert all(r.authorization == f"Bearer {key}" for r in server.chat_requests)


def test_same_explicit_key_reuses_one_private_variable(fake_llm, make_model):
    server = fake_llm()
    first = make_model(server, api_key="sk-same")
    second = make_model(server, api_key="sk-same")
    other = make_model(server, api_key="sk-other")
    assert first.api_key_env == second.api_key_env != other.api_key_env


def test_key_from_a_named_environment_variable(fake_llm, make_model, monkeypatch):
    server = fake_llm()
    monkeypatch.setenv("MY_LLM_KEY", "sk-from-env")
    model = make_model(server, api_key_env="MY_LLM_KEY")
    assert b"sk-from-env" not in cloudpickle.dumps(model)
    assert pickle.loads(pickle.dumps(model)).api_key_env == "MY_LLM_KEY"
    model.generate("Say hello")
    assert server.chat_requests[0].authorization == "Bearer sk-from-env"


def test_missing_named_variable_is_a_clear_error(fake_llm, make_model):
    server = fake_llm()
    model = make_model(server, api_key_env="MW_TEST_UNSET_KEY")
    with pytest.raises(ModelResolutionError, match="MW_TEST_UNSET_KEY"):
        model.generate("Say hello")
    assert server.request_count == 0


def test_no_key_without_base_url_names_openai_api_key():
    model = OpenAIModel("gpt-4o-mini")
    with pytest.raises(ModelResolutionError, match="OPENAI_API_KEY"):
        model.generate("Say hello")


def test_no_key_with_a_base_url_sends_a_placeholder(fake_llm, monkeypatch):
    server = fake_llm()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    with OpenAIModel("local-model", max_retries=0) as model:
        assert model.generate("Say hello").startswith(FAKE_LABEL)
    assert server.chat_requests[0].authorization == f"Bearer {PLACEHOLDER_KEY}"
    assert server.chat_requests[0].body["model"] == "local-model"


def test_environment_base_url_and_key_are_read_when_the_model_is_used(fake_llm, monkeypatch):
    model = OpenAIModel("fake-model", max_retries=0)  # created before the variables exist
    server = fake_llm()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-late")
    with model:
        model.generate("Say hello")
    assert server.chat_requests[0].authorization == "Bearer sk-late"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"api_key": "k", "api_key_env": "V"}, "not both"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"base_url": ""}, "base_url"),
        ({"api_key": ""}, "api_key"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error):
    with pytest.raises(ValueError, match=error):
        OpenAIModel("gpt-4o-mini", **kwargs)


def test_repr_hides_url_credentials():
    model = OpenAIModel("m", base_url="https://user:secret@llm.example/v1", api_key="sk-x")
    assert "secret" not in repr(model) and "sk-x" not in repr(model)
    assert "llm.example" in repr(model)


# -- registry and lazy import -------------------------------------------------------------------


def test_openai_spec_resolves_lazily_to_openai_model():
    assert "openai" in registered_providers()
    lazy = resolve_model("openai:gpt-4o-mini")
    assert isinstance(lazy, LazyModel)
    resolved = lazy.resolve()
    assert isinstance(resolved, OpenAIModel)
    assert resolved.model == "gpt-4o-mini" and resolved.label == "openai:gpt-4o-mini"
    with pytest.raises(ModelResolutionError, match="openai:gpt-4o-mini"):
        resolve_model("openai").resolve()


def test_missing_openai_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ModelResolutionError, match=r"pip install mission-widgets\[openai\]"):
        OpenAIModel("gpt-4o-mini")
    with pytest.raises(ModelResolutionError, match=r"pip install mission-widgets\[openai\]"):
        resolve_model("openai:gpt-4o-mini").generate("hi")


def test_importing_the_package_does_not_import_openai():
    code = (
        "import sys, mission_widgets\n"
        "from mission_widgets.core.models import resolve_model\n"
        "import mission_widgets.core.providers, mission_widgets.testing\n"
        "resolve_model('openai:gpt-4o-mini')\n"
        "assert 'openai' not in sys.modules, 'openai imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_plan_prompt_header_is_what_marks_planning():
    assert plan_prompt("x").startswith(PLAN_PROMPT_HEADER)
