"""Models: how a ``model`` argument becomes something with ``.generate(prompt) -> str``.

Accepted: a ``"provider:name"`` string (resolved lazily through the provider registry, only
when a plan or an executor-less step needs it, so ``"test:model"`` is harmless until used),
an object with ``.generate(prompt)``, or a callable ``prompt -> str``.

Built in: the offline ``"demo"`` model (``demo``, ``demo:fast``, ``demo:slow``) for
tutorials, tests and Binder; every text it returns is labelled as simulated; and
``"openai:<model>"`` (:class:`~mission_widgets.core.providers.OpenAIModel`, imported only
when such a string is resolved). Add a provider with :func:`register_provider`.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable

from .errors import ModelResolutionError
from .events import report_progress
from .planning import EXPLAIN_PROMPT_HEADER, PLAN_PROMPT_HEADER

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Model(Protocol):
        """What a resolved model is: anything with ``generate(prompt) -> str``."""

        def generate(self, prompt: str) -> str: ...


ProviderFactory = Callable  # Callable[[str], Model]: model name -> model
_providers: dict[str, ProviderFactory] = {}
_providers_lock = threading.Lock()


def register_provider(name: str, factory: ProviderFactory, *, replace: bool = False) -> None:
    """Make ``"name:model"`` strings resolve through ``factory(model_name)``.

    ``factory`` gets the part after the colon ("" when there is none) and returns an object
    with ``.generate(prompt) -> str``. It runs in the process that needs the model (a worker
    for subprocess missions), so read secrets from the environment there, not here.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"provider name must be a simple word, got {name!r}")
    if not callable(factory):
        raise TypeError(f"provider factory for {name!r} must be callable")
    with _providers_lock:
        if name in _providers and not replace:
            raise ValueError(f"provider {name!r} is already registered (pass replace=True)")
        _providers[name] = factory


def registered_providers() -> list[str]:
    with _providers_lock:
        return sorted(_providers)


def provider_factory(name: str) -> ProviderFactory | None:
    """The factory registered for provider ``name`` (None when there is none)."""
    with _providers_lock:
        return _providers.get(name)


def split_spec(spec: str) -> tuple[str, str]:
    provider, _, name = spec.partition(":")
    return provider.strip(), name.strip()


class LazyModel:
    """A ``"provider:name"`` string that resolves on first use (and pickles as the string)."""

    def __init__(self, spec: str) -> None:
        if not isinstance(spec, str) or not spec.strip():
            raise ModelResolutionError(f"model spec must be a non-empty string, got {spec!r}")
        self._setup(spec.strip())

    def _setup(self, spec: str) -> None:
        self.spec = spec
        self._resolved: Model | None = None
        self._lock = threading.Lock()

    def resolve(self) -> Model:
        with self._lock:
            if self._resolved is None:
                self._resolved = _resolve_spec(self.spec)
            return self._resolved

    def generate(self, prompt: str) -> str:
        return self.resolve().generate(prompt)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["spec"])

    def __repr__(self) -> str:
        return f"LazyModel({self.spec!r})"

    def __str__(self) -> str:
        return self.spec


def _resolve_spec(spec: str) -> Model:
    provider, name = split_spec(spec)
    with _providers_lock:
        factory = _providers.get(provider)
    if factory is None:
        known = ", ".join(registered_providers()) or "none"
        raise ModelResolutionError(
            f"cannot resolve model {spec!r}: no provider {provider!r} is registered "
            f"(known providers: {known}; add one with mission_widgets.register_provider)"
        )
    try:
        model = factory(name)
    except ModelResolutionError:
        raise
    except Exception as exc:
        raise ModelResolutionError(
            f"cannot resolve model {spec!r}: provider {provider!r} failed with "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return as_model(model, where=f"provider {provider!r}")


class CallableModel:
    """Wraps a callable ``prompt -> str`` as a model."""

    def __init__(self, fn: Callable[[str], Any]) -> None:
        self.fn = fn

    def generate(self, prompt: str) -> str:
        return self.fn(prompt)

    def __repr__(self) -> str:
        return f"CallableModel({getattr(self.fn, '__name__', self.fn)!r})"


def as_model(model: Any, where: str = "model") -> Model:
    """Wrap an already-concrete model (object with generate, or callable)."""
    if hasattr(model, "generate") and callable(model.generate):
        return model
    if callable(model):
        return CallableModel(model)
    raise ModelResolutionError(
        f"{where} must be a 'provider:name' string, an object with .generate(prompt) or a "
        f"callable prompt -> str; got {type(model).__name__}"
    )


def resolve_model(model: Any) -> Model | None:
    """Turn a user's ``model`` argument into a model object (lazily for strings)."""
    if model is None:
        return None
    if isinstance(model, LazyModel):
        return model
    if isinstance(model, str):
        return LazyModel(model)
    return as_model(model)


def model_spec(model: Any) -> str | None:
    """The ``"provider:name"`` of a model given as a string or LazyModel, else None."""
    if isinstance(model, str):
        return model.strip()
    if isinstance(model, LazyModel):
        return model.spec
    return None


def model_label(model: Any) -> str | None:
    """A short human name for a model, for tables and events."""
    if model is None:
        return None
    if isinstance(model, str | LazyModel):
        return str(model)
    label = getattr(model, "label", None) or getattr(model, "model", None)
    if isinstance(label, str):
        return label
    return type(model).__name__


# --- the offline demo model -------------------------------------------------------------

SIMULATED_LABEL = "[simulated by the offline demo model]"

_DEMO_SPEEDS = {"": 1.0, "fast": 0.0, "slow": 3.0, "instant": 0.0}
#: The step that ``[fail-step]`` fails (the first one of every plan).
FAILING_STEP = "gather"


class DemoModel:
    """An offline, deterministic stand-in for an LLM. Everything it says is simulated.

    It plans any goal into 3-5 steps (two of them parallel) and "executes" a step by
    sleeping in small ticks while reporting progress. About one step in five fails its first
    attempt with a simulated transient error, so retries show up. Goals containing
    ``[fail]`` fail every attempt; ``[fail-step]`` fails every attempt of one step only
    (``gather``: a service it needs is down, so a person can skip it and the mission go
    on); ``[hang]`` makes steps hang (for stall demos);
    ``[slow]`` makes steps three times slower. Asked to explain a step's failures
    (``orch.explain``), it builds an analysis from the step's error history
    (:mod:`~mission_widgets.core.demo_analysis`).
    """

    label = "demo"

    def __init__(self, step_seconds: float = 1.2, ticks: int = 8, transient_errors: bool = True):
        self.step_seconds = float(step_seconds)
        self.ticks = max(1, int(ticks))
        self.transient_errors = transient_errors

    @classmethod
    def from_name(cls, name: str) -> DemoModel:
        if name not in _DEMO_SPEEDS:
            raise ModelResolutionError(
                f"unknown demo model 'demo:{name}' (use one of: "
                + ", ".join("demo" + (f":{k}" if k else "") for k in _DEMO_SPEEDS)
                + ")"
            )
        return cls(step_seconds=1.2 * _DEMO_SPEEDS[name])

    def generate(self, prompt: str) -> str:
        if prompt.startswith(PLAN_PROMPT_HEADER):
            return self._plan(prompt.rsplit("GOAL:", 1)[-1].strip())
        if prompt.startswith(EXPLAIN_PROMPT_HEADER):
            from .demo_analysis import explain_failures  # only when asked to explain

            return explain_failures(prompt, SIMULATED_LABEL)
        return self._execute(prompt)

    @staticmethod
    def _digest(text: str) -> int:
        return zlib.crc32(text.encode())

    def _plan(self, goal: str) -> str:
        import json

        topic = goal if len(goal) <= 60 else goal[:57] + "..."
        steps = [
            {
                "id": "gather",
                "description": f"Gather background material on: {topic}",
                "can_parallel": True,
                "depends_on": [],
            },
            {
                "id": "questions",
                "description": f"List the open questions about: {topic}",
                "can_parallel": True,
                "depends_on": [],
            },
            {
                "id": "draft",
                "description": f"Draft an answer to: {topic}",
                "can_parallel": False,
                "depends_on": ["gather", "questions"],
            },
        ]
        extra = self._digest(goal) % 3
        if extra >= 1:
            steps.append(
                {
                    "id": "review",
                    "description": "Review the draft for gaps and errors",
                    "can_parallel": False,
                    "depends_on": ["draft"],
                }
            )
        if extra >= 2:
            steps.append(
                {
                    "id": "summary",
                    "description": "Write a three-line summary",
                    "can_parallel": False,
                    "depends_on": ["review"],
                }
            )
        return "```json\n" + json.dumps(steps, indent=1) + "\n```"

    def _execute(self, prompt: str) -> str:
        goal_line = next((ln for ln in prompt.splitlines() if ln.startswith("MISSION GOAL:")), "")
        step_line = next(
            (ln for ln in prompt.splitlines() if ln.startswith("CURRENT STEP")), "a step"
        )
        retrying = "PREVIOUS ATTEMPT(S) FAILED" in prompt
        seconds = self.step_seconds * (3.0 if "[slow]" in goal_line else 1.0)
        if "[hang]" in goal_line:
            while True:  # a stuck tool: no progress, never returns
                time.sleep(0.2)
        for tick in range(1, self.ticks + 1):
            if seconds:
                time.sleep(seconds / self.ticks)
            report_progress(tick / self.ticks, f"simulated work {tick}/{self.ticks}")
        if "[fail]" in goal_line:
            raise RuntimeError(f"simulated failure (the goal asks for [fail]) in {step_line}")
        if "[fail-step]" in goal_line and step_line.startswith(f"CURRENT STEP ({FAILING_STEP})"):
            raise ConnectionError(
                f"simulated: the catalogue service is down (the goal asks for [fail-step], "
                f"so step {FAILING_STEP!r} fails every attempt)"
            )
        is_step = step_line != "a step"  # explanations and other questions never fail
        if self.transient_errors and is_step and not retrying and self._digest(prompt) % 5 == 0:
            raise ConnectionError("simulated transient error from the offline demo model")
        note = " after a retry" if retrying else ""
        return f"{SIMULATED_LABEL} {step_line.split(':', 1)[-1].strip()} -- done{note}."

    def __repr__(self) -> str:
        return f"DemoModel(step_seconds={self.step_seconds})"


register_provider("demo", DemoModel.from_name)


def _openai_factory(name: str) -> Model:
    # Imported here, on first resolution of an "openai:..." string, never at import time.
    from .providers.openai_provider import OpenAIModel

    return OpenAIModel.from_name(name)


register_provider("openai", _openai_factory)
