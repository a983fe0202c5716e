"""``openai:<model>``: chat models behind the OpenAI API or any OpenAI-compatible server.

Uses the official ``openai`` SDK (``pip install mission-widgets[openai]``), imported only when
a model makes its first call. Works with OpenAI itself and with local servers that speak the
same API (Ollama, vLLM, LM Studio, llama.cpp ...) through ``base_url`` / ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ModelResolutionError
from ..events import emit_event, guard_model_call
from ..planning import PLAN_PROMPT_HEADER

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
#: Prefix of the private environment variables that hold keys given as ``api_key=``.
PRIVATE_KEY_ENV_PREFIX = "_MISSION_WIDGETS_OPENAI_KEY_"
#: Sent as the key to a server at an explicit base URL when no key is configured at all
#: (local servers such as Ollama or LM Studio ignore it; the SDK insists on one).
PLACEHOLDER_KEY = "not-needed"

PLAN_SYSTEM_JSON = (
    "You plan multi-step missions. Reply with one JSON object of the form "
    '{"steps": [...]} whose "steps" is the JSON array of step objects the user asks for. '
    "No prose."
)
PLAN_SYSTEM_TEXT = (
    "You plan multi-step missions. Reply with the JSON array of steps only: no prose, "
    "no code fences."
)
STEP_SYSTEM = (
    "You carry out one step of a multi-step mission. Use the results of earlier steps and "
    "the shared memory you are given. Reply with the result of the current step only."
)

_stash_lock = threading.Lock()
_stashed_keys: dict[str, str] = {}  # key -> private variable name, in this process only


def _stash_key(key: str) -> str:
    """Put ``key`` in this process's environment under a private name; return the name."""
    with _stash_lock:
        name = _stashed_keys.get(key)
        if name is None:
            name = PRIVATE_KEY_ENV_PREFIX + secrets.token_hex(6).upper()
            _stashed_keys[key] = name
        os.environ[name] = key
    return name


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise ModelResolutionError(
            "the 'openai' package is needed for openai:<model> models but cannot be imported "
            f"({exc}); install it with: pip install mission-widgets[openai]"
        ) from None
    return openai


def _openai_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("openai") is not None
    except (ImportError, ValueError):
        return False


def _safe_url(url: str | None) -> str | None:
    """``url`` without any ``user:password@`` part (for reprs and messages)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


class OpenAIModel:
    """A chat model reached through the ``openai`` SDK: ``.generate(prompt) -> str``.

    ``OpenAIModel("gpt-4o-mini")`` is what the string ``"openai:gpt-4o-mini"`` resolves to.
    Build one yourself to choose the server, the key, timeouts and retries::

        model = OpenAIModel("llama3.1", base_url="http://localhost:11434/v1")  # Ollama
        model = OpenAIModel("gpt-4o-mini", api_key_env="MY_OPENAI_KEY")
        orch = MissionOrchestrator(model=model)          # every mission of the orchestrator
        Mission("...", model=model)                      # or one mission

    **Server.** ``base_url`` (e.g. ``"http://localhost:8000/v1"``); when None, the SDK reads
    ``OPENAI_BASE_URL`` in the process that makes the call, else uses api.openai.com.

    **Key.** Never stored in the model's pickled state, so it cannot reach the mission file
    handed to a worker, a checkpoint, the store, a log, an event or the panel:

    * ``api_key_env`` (default ``"OPENAI_API_KEY"``): the model pickles only the *name* of
      this environment variable and reads the key from it in the process that calls the
      server. Subprocess workers inherit the kernel's environment, so setting the variable
      in the kernel (``os.environ[...] = ...``) before starting missions is enough.
    * ``api_key="sk-..."``: kept in memory for this process and also put in this process's
      environment under a private random name (``_MISSION_WIDGETS_OPENAI_KEY_<hex>``), which
      is what gets pickled; subprocess workers started afterwards inherit it. Processes that
      do not inherit the kernel's environment (e.g. Dask workers on other machines) need
      ``api_key_env`` and the variable set there.

    With no key at all, a model with a base URL (explicit or ``OPENAI_BASE_URL``) sends a
    placeholder key, which local servers accept; otherwise the call raises
    :class:`~mission_widgets.core.errors.ModelResolutionError` naming the variable to set.

    **Planning prompts** (those starting with ``PLAN_PROMPT_HEADER``) ask for JSON output
    (``response_format={"type": "json_object"}``, a ``{"steps": [...]}`` object) when
    ``json_mode``; a server that rejects ``response_format`` with HTTP 400/422 is asked again
    without it, and this model stops sending it. Step prompts get plain text back.

    **Errors.** Rate limits (429), 408/409/5xx replies, timeouts and connection errors are
    retried by the SDK up to ``max_retries`` times with exponential backoff (honouring
    ``Retry-After``); ``timeout`` (seconds) bounds each request. What still fails is raised
    as the SDK's exception and classified by the engine: ``timeout``, ``permission``
    (401/403), ``missing_resource`` (404) or ``execution_error``.

    **Usage.** Each successful call emits a ``model_call`` event (``model``,
    ``prompt_tokens``, ``completion_tokens``, ``total_tokens``, ``duration_ms``, ``purpose``);
    the store adds the tokens up per mission, shown by ``MissionOrchestrator.status()``.
    ``self.usage`` holds this process's totals.
    """

    provider = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 60,
        max_retries: int = 2,
        temperature: float | None = None,
        json_mode: bool = True,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ModelResolutionError(
                f"OpenAIModel needs a model name such as 'gpt-4o-mini', got {model!r} "
                "(as a string: 'openai:gpt-4o-mini')"
            )
        if api_key is not None and api_key_env is not None:
            raise ValueError("pass either api_key or api_key_env, not both")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty string")
        if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env):
            raise ValueError(f"api_key_env must name an environment variable, got {api_key_env!r}")
        if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
            raise ValueError(f"base_url must be a URL string or None, got {base_url!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if not _openai_installed():
            raise ModelResolutionError(
                "the 'openai' package is needed for openai:<model> models; "
                "install it with: pip install mission-widgets[openai]"
            )
        self.model = model.strip()
        self.base_url = base_url.strip() if base_url else None
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.temperature = temperature
        self.json_mode = bool(json_mode)
        self._key_given = api_key is not None
        self._key_env_given = api_key_env is not None
        if api_key is not None:
            self.api_key_env = _stash_key(api_key.strip())
        else:
            self.api_key_env = api_key_env or DEFAULT_KEY_ENV
        self._api_key = api_key.strip() if api_key is not None else None
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._json_supported: bool | None = None
        self.usage = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}

    @classmethod
    def from_name(cls, name: str) -> OpenAIModel:
        """The registry's factory: ``"openai:gpt-4o-mini"`` -> ``OpenAIModel("gpt-4o-mini")``."""
        if not name:
            raise ModelResolutionError(
                "say which OpenAI model to use, e.g. 'openai:gpt-4o-mini' (got 'openai')"
            )
        return cls(name)

    @property
    def label(self) -> str:
        return f"openai:{self.model}"

    # -- the client ------------------------------------------------------------------------

    def _resolve_key(self, base_url: str | None) -> str:
        key = self._api_key or os.environ.get(self.api_key_env)
        if key:
            return key
        if self._key_given:
            raise ModelResolutionError(
                f"model {self.label}: the api_key given to OpenAIModel lives in the environment "
                f"of the process that created the model, and this process (pid {os.getpid()}) "
                "did not inherit it; where workers do not inherit the kernel's environment, "
                "use OpenAIModel(..., api_key_env='VAR') and set VAR there"
            )
        if base_url and not self._key_env_given:
            return PLACEHOLDER_KEY
        raise ModelResolutionError(
            f"model {self.label} needs an API key: set the environment variable "
            f"{self.api_key_env} (or pass api_key_env=... / api_key=... to OpenAIModel)"
        )

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                openai = _import_openai()
                base_url = self.base_url or os.environ.get(BASE_URL_ENV) or None
                self._client = openai.OpenAI(
                    api_key=self._resolve_key(base_url),
                    base_url=base_url,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                )
            return self._client

    def close(self) -> None:
        """Close the HTTP connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- calls -------------------------------------------------------------------------------

    @staticmethod
    def _messages(prompt: str, planning: bool, json_mode: bool) -> list[dict[str, str]]:
        system = STEP_SYSTEM
        if planning:
            system = PLAN_SYSTEM_JSON if json_mode else PLAN_SYSTEM_TEXT
        return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]

    def _create(self, client: Any, prompt: str, planning: bool, json_mode: bool) -> Any:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": self._messages(prompt, planning, json_mode),
        }
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if json_mode:
            params["response_format"] = {"type": "json_object"}
        return client.chat.completions.create(**params)

    def generate(self, prompt: str) -> str:
        """One chat completion; the reply's text. Raises the SDK's errors after its retries."""
        guard_model_call(self.label, prompt)  # the mission's budget: raises, call not made
        client = self._get_client()
        planning = prompt.startswith(PLAN_PROMPT_HEADER)
        json_mode = planning and self.json_mode and self._json_supported is not False
        started = time.monotonic()
        if json_mode:
            openai = _import_openai()
            try:
                response = self._create(client, prompt, planning, True)
                self._json_supported = True
            except openai.APIStatusError as exc:
                # Never confirmed to work here: assume the server rejects response_format.
                if exc.status_code not in (400, 422) or self._json_supported:
                    raise
                self._json_supported = False
                json_mode = False
                response = self._create(client, prompt, planning, False)
        else:
            response = self._create(client, prompt, planning, False)
        duration_ms = (time.monotonic() - started) * 1000.0
        usage = getattr(response, "usage", None)
        prompt_tokens = _int_or_none(getattr(usage, "prompt_tokens", None))
        completion_tokens = _int_or_none(getattr(usage, "completion_tokens", None))
        with self._lock:
            self.usage["calls"] += 1
            self.usage["prompt_tokens"] += prompt_tokens or 0
            self.usage["completion_tokens"] += completion_tokens or 0
        emit_event(
            "model_call",
            model=self.label,
            purpose="plan" if planning else "step",
            json_mode=json_mode,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=(prompt_tokens or 0) + (completion_tokens or 0),
            duration_ms=duration_ms,
        )
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise RuntimeError(f"model {self.label} returned no choices")
        content = choices[0].message.content
        if content is None:
            raise RuntimeError(
                f"model {self.label} returned no text "
                f"(finish_reason={getattr(choices[0], 'finish_reason', None)!r})"
            )
        return content

    # -- pickling: the configuration travels, the key and the client do not ------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "temperature": self.temperature,
            "json_mode": self.json_mode,
            "key_given": self._key_given,
            "key_env_given": self._key_env_given,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model = state["model"]
        self.base_url = state["base_url"]
        self.api_key_env = state["api_key_env"]
        self.timeout = state["timeout"]
        self.max_retries = state["max_retries"]
        self.temperature = state["temperature"]
        self.json_mode = state["json_mode"]
        self._key_given = state.get("key_given", False)
        self._key_env_given = state.get("key_env_given", False)
        self._api_key = None
        self._init_runtime()

    def __repr__(self) -> str:
        where = f", base_url={_safe_url(self.base_url)!r}" if self.base_url else ""
        return f"OpenAIModel({self.model!r}{where})"


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
