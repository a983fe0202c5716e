"""The reusable fake server itself (plain HTTP, no SDK)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from mission_widgets.core.planning import parse_plan, plan_prompt
from mission_widgets.testing import FakeLLMServer, Reply


def post(server: FakeLLMServer, body: dict, path: str = "/chat/completions"):
    request = urllib.request.Request(
        server.base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer k"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def chat(prompt: str, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": prompt}], **extra}


def test_default_answers_plan_and_step_prompts(fake_llm):
    server = fake_llm()
    status, body = post(server, chat(plan_prompt("Bake bread")))
    assert status == 200
    steps = parse_plan(body["choices"][0]["message"]["content"])
    assert [s["id"] for s in steps] == ["research", "outline", "write"]
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )

    _, wrapped = post(
        server, chat(plan_prompt("Bake bread"), response_format={"type": "json_object"})
    )
    assert isinstance(json.loads(wrapped["choices"][0]["message"]["content"]), dict)

    _, step = post(server, chat("MISSION GOAL: g\n\nCURRENT STEP (s1): knead"))
    assert step["choices"][0]["message"]["content"] == "[fake LLM] done: CURRENT STEP (s1): knead"
    assert [r.authorization for r in server.requests] == ["Bearer k"] * 3


def test_script_then_handler_then_default(fake_llm):
    server = fake_llm(
        Reply.text("first", usage=(1, 2)),
        Reply.error(503),
        handler=lambda r: Reply.text("handled") if "special" in r.prompt else None,
        plan=[{"id": "only", "description": "the one step"}],
    )
    assert post(server, chat("special"))[1]["choices"][0]["message"]["content"] == "handled"
    _, first = post(server, chat("x"))
    assert first["choices"][0]["message"]["content"] == "first"
    assert first["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    with pytest.raises(urllib.error.HTTPError) as info:
        post(server, chat("x"))
    with info.value as error:  # closes the response's socket
        assert error.code == 503
        assert json.loads(error.read())["error"]["message"] == "fake error 503"
    _, plan = post(server, chat(plan_prompt("g")))
    assert parse_plan(plan["choices"][0]["message"]["content"])[0]["id"] == "only"
    assert server.request_count == 4


def test_models_route_and_unknown_routes(fake_llm):
    server = fake_llm()
    with urllib.request.urlopen(server.base_url + "/models", timeout=10) as response:
        assert json.loads(response.read())["data"][0]["id"] == "fake-model"
    with pytest.raises(urllib.error.HTTPError) as info:
        post(server, {}, path="/embeddings")
    with info.value as error:
        assert error.code == 404


def test_stop_releases_slow_replies_and_is_idempotent():
    server = FakeLLMServer([Reply.slow(60)]).start()
    assert server.base_url.startswith("http://127.0.0.1:")
    assert "running" in repr(server)
    server.stop()
    server.stop()
    assert "stopped" in repr(server)
