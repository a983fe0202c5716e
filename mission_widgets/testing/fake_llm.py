"""A fake OpenAI-compatible chat server on 127.0.0.1, for tests, notebooks and CI.

It serves ``POST /v1/chat/completions`` (and ``GET /v1/models``) on a free local port, so
the real ``openai`` SDK and :class:`~mission_widgets.core.providers.OpenAIModel` can be
exercised with no network and no API key::

    from mission_widgets import Mission
    from mission_widgets.core.providers import OpenAIModel
    from mission_widgets.testing import FakeLLMServer, Reply

    with FakeLLMServer() as server:
        model = OpenAIModel("fake-model", base_url=server.base_url, api_key="fake-key")
        mission = Mission("Explain tides to a child", model=model).run()

By default it answers planning prompts (they start with ``PLAN_PROMPT_HEADER``) with a valid
three-step plan (as ``{"steps": [...]}`` when the request asks for a JSON object) and every
other prompt with a short text naming the step, with token usage. ``script`` replaces the
default for the first requests, one :class:`Reply` per request, in order::

    FakeLLMServer(script=[Reply.rate_limited(), Reply.error(401), Reply.slow(5)])

``handler(request) -> Reply | None`` decides per request instead (None: the default).
``server.requests`` lists what it received (:class:`FakeRequest`). Run it on its own with
``python -m mission_widgets.testing.fake_llm [--port N]``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..core.planning import PLAN_PROMPT_HEADER

__all__ = ["FakeLLMServer", "FakeRequest", "Reply"]

#: What the fake says in every step reply, so nobody mistakes it for a real model.
FAKE_LABEL = "[fake LLM]"


@dataclass
class Reply:
    """One scripted answer. Build it with the class methods."""

    status: int = 200
    content: str | None = None  # the assistant's text (200 only); None -> the default text
    body: Any = None  # a whole JSON body instead (errors, odd shapes)
    raw: bytes | None = None  # raw bytes instead of JSON
    usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens)
    delay: float = 0.0  # seconds to wait before answering (released when the server stops)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(
        cls, content: str, *, usage: tuple[int, int] | None = None, delay: float = 0.0
    ) -> Reply:
        return cls(content=content, usage=usage, delay=delay)

    @classmethod
    def plan(cls, steps: list[dict[str, Any]], *, wrap: bool = False, **kwargs: Any) -> Reply:
        """A plan reply: the steps as a JSON array (or ``{"steps": [...]}`` with ``wrap``)."""
        return cls(content=json.dumps({"steps": steps} if wrap else steps), **kwargs)

    @classmethod
    def error(
        cls,
        status: int,
        message: str | None = None,
        *,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        body = {
            "error": {
                "message": message or _ERROR_MESSAGES.get(status, f"fake error {status}"),
                "type": type or _ERROR_TYPES.get(status, "api_error"),
                "param": None,
                "code": None,
            }
        }
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def rate_limited(cls, retry_after_ms: int = 10) -> Reply:
        """A 429 that tells the client to retry after ``retry_after_ms`` milliseconds."""
        return cls.error(
            429,
            "Rate limit reached (fake)",
            type="rate_limit_error",
            headers={"retry-after-ms": str(retry_after_ms)},
        )

    @classmethod
    def slow(cls, seconds: float, content: str | None = None) -> Reply:
        """Answer only after ``seconds`` (use it against a shorter client timeout)."""
        return cls(content=content, delay=seconds)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    422: "invalid_request_error",
    500: "server_error",
}

#: Default error texts. They never name the status code (nor words such as "forbidden" or
#: "not found"), so a client that classifies these errors must read the status, not the text.
_ERROR_MESSAGES = {
    401: "Incorrect API key provided (fake)",
    403: "This project may not use the requested model (fake)",
    404: "No model of that name is served here (fake)",
    422: "The request body could not be processed (fake)",
}


@dataclass
class FakeRequest:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or None

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return self.body["messages"]
        return []

    @property
    def prompt(self) -> str:
        """The text of the last user message ("" when there is none)."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else json.dumps(content)
        return ""

    @property
    def is_planning(self) -> bool:
        return self.prompt.startswith(PLAN_PROMPT_HEADER)

    @property
    def wants_json_object(self) -> bool:
        fmt = self.body.get("response_format") if isinstance(self.body, dict) else None
        return isinstance(fmt, dict) and fmt.get("type") == "json_object"

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


def default_plan(goal: str) -> list[dict[str, Any]]:
    topic = goal if len(goal) <= 60 else goal[:57] + "..."
    return [
        {
            "id": "research",
            "description": f"Collect the key facts about: {topic}",
            "can_parallel": True,
            "depends_on": [],
        },
        {
            "id": "outline",
            "description": f"Outline an answer to: {topic}",
            "can_parallel": True,
            "depends_on": [],
        },
        {
            "id": "write",
            "description": "Write the final answer from the facts and the outline",
            "can_parallel": False,
            "depends_on": ["research", "outline"],
        },
    ]


class FakeLLMServer:
    """An OpenAI-compatible chat server on ``127.0.0.1:<free port>`` (a context manager).

    ``script``: replies for the first requests, in order. ``handler``: a function
    ``FakeRequest -> Reply | None`` consulted before the script. ``plan``: the steps the
    default planner returns (else three steps derived from the goal). ``usage``: fixed
    ``(prompt_tokens, completion_tokens)`` for default replies (else word counts).
    ``latency``: seconds every default reply waits (to watch missions run in a notebook).
    ``reject_response_format``: answer requests that set ``response_format`` with an error,
    like servers without JSON mode: ``True`` answers 400, a number answers that status
    (servers built on FastAPI answer 422).
    """

    def __init__(
        self,
        script: Iterable[Reply] | None = None,
        *,
        handler: Callable[[FakeRequest], Reply | None] | None = None,
        plan: list[dict[str, Any]] | None = None,
        usage: tuple[int, int] | None = None,
        latency: float = 0.0,
        reject_response_format: bool | int = False,
        port: int = 0,
    ) -> None:
        self.script = list(script or [])
        self.handler = handler
        self.plan = plan
        self.usage = usage
        self.latency = float(latency)
        self.reject_response_format = reject_response_format
        self.port = port
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.fake = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-llm-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; slow replies still waiting are released at once."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What to give OpenAIModel(base_url=...) or OPENAI_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[FakeRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def add_script(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def __repr__(self) -> str:
        state = "running" if self._httpd is not None else "stopped"
        return f"FakeLLMServer({self.base_url!r}, {state}, requests={len(self.requests)})"

    # -- answering -----------------------------------------------------------------------------

    def _choose(self, request: FakeRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
        if self.handler is not None:
            reply = self.handler(request)
            if reply is not None:
                return reply
        with self._lock:
            if self.script:
                return self.script.pop(0)
        return self.default_reply(request)

    def default_reply(self, request: FakeRequest) -> Reply:
        if not request.path.rstrip("/").endswith("/chat/completions"):
            return Reply.error(404, f"no route {request.method} {request.path}")
        body = request.body if isinstance(request.body, dict) else {}
        if self.reject_response_format and "response_format" in body:
            rejected = self.reject_response_format
            status = 400 if rejected is True else int(rejected)
            return Reply.error(status, "response_format is not supported by this server")
        if request.is_planning:
            goal = request.prompt.rsplit("GOAL:", 1)[-1].strip()
            steps = self.plan if self.plan is not None else default_plan(goal)
            return Reply.plan(steps, wrap=request.wants_json_object, delay=self.latency)
        step_line = next(
            (ln for ln in request.prompt.splitlines() if ln.startswith("CURRENT STEP")),
            "the request",
        )
        return Reply.text(f"{FAKE_LABEL} done: {step_line}", delay=self.latency)

    def completion_body(self, request: FakeRequest, reply: Reply) -> dict[str, Any]:
        content = reply.content
        if content is None:
            content = self.default_reply(request).content or ""
        usage = reply.usage or self.usage
        if usage is None:
            words = sum(
                len(str(m.get("content", "")).split())
                for m in request.messages
                if isinstance(m, dict)
            )
            usage = (words, len(content.split()))
        model = request.body.get("model") if isinstance(request.body, dict) else None
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model or "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            },
        }


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeLLM/1.0"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at shutdown
    timeout = 10

    @property
    def fake(self) -> FakeLLMServer:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _request(self) -> FakeRequest:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        return FakeRequest(self.command, self.path, headers, body)

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = FakeRequest("GET", self.path, headers, None)
        if self.path.rstrip("/").endswith("/models"):
            with self.fake._lock:
                self.fake.requests.append(request)
            self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
            return
        self._answer(request)

    def do_POST(self) -> None:
        self._answer(self._request())

    def _answer(self, request: FakeRequest) -> None:
        fake = self.fake
        reply = fake._choose(request)
        if reply.delay > 0 and fake._stop.wait(reply.delay):
            return  # the server is stopping: drop the connection
        if reply.raw is not None:
            self._send(reply.status, reply.raw, reply.headers)
        elif reply.body is not None:
            self._send(reply.status, reply.body, reply.headers)
        elif reply.status == 200:
            self._send(200, fake.completion_body(request, reply), reply.headers)
        else:
            self._send(reply.status, Reply.error(reply.status).body, reply.headers)

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass


def main(argv: list[str] | None = None) -> None:
    """``python -m mission_widgets.testing.fake_llm [--port N] [--latency S]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible chat API.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    with FakeLLMServer(port=args.port, latency=args.latency) as server:
        print(f"OPENAI_BASE_URL={server.base_url}", flush=True)
        print("OPENAI_API_KEY=<anything>; Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
