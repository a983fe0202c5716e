"""Fixtures of the LLM provider tests: a fake OpenAI-compatible server on 127.0.0.1, models
that are closed at teardown, and an environment with no real OpenAI settings or proxies."""

from __future__ import annotations

import os

import pytest

from mission_widgets.core.providers import openai_provider
from mission_widgets.core.providers.openai_provider import PRIVATE_KEY_ENV_PREFIX, OpenAIModel
from mission_widgets.testing import FakeLLMServer

OPENAI_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


@pytest.fixture(autouse=True)
def llm_env(monkeypatch):
    """No real OpenAI settings leak in; only 127.0.0.1 is reachable without a proxy.

    Keys stashed by OpenAIModel(api_key=...) during the test are removed afterwards.
    """
    for name in OPENAI_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    before = {k for k in os.environ if k.startswith(PRIVATE_KEY_ENV_PREFIX)}
    yield
    added = {k for k in os.environ if k.startswith(PRIVATE_KEY_ENV_PREFIX)} - before
    for name in added:
        del os.environ[name]
    with openai_provider._stash_lock:
        for key, name in list(openai_provider._stashed_keys.items()):
            if name in added:
                del openai_provider._stashed_keys[key]


@pytest.fixture
def fake_llm():
    """``fake_llm(*script, **options)`` starts a FakeLLMServer, stopped at teardown."""
    servers: list[FakeLLMServer] = []

    def start(*script, **options) -> FakeLLMServer:
        server = FakeLLMServer(list(script), **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def make_model():
    """``make_model(server, **options)``: an OpenAIModel for the server, closed at teardown.

    Defaults: a test key, no SDK retries (tests that want them ask).
    """
    models: list[OpenAIModel] = []

    def make(server: FakeLLMServer, **options) -> OpenAIModel:
        if "api_key_env" not in options:
            options.setdefault("api_key", "sk-test-key")
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 10)
        model = OpenAIModel(options.pop("name", "fake-model"), base_url=server.base_url, **options)
        models.append(model)
        return model

    yield make
    for model in models:
        model.close()
