"""Public test helpers: ``FakeLLMServer``, a scripted OpenAI-compatible server on 127.0.0.1
(with ``Reply`` and ``FakeRequest``), for notebooks and your own tests without an API key.

Nothing here is imported by the engine. The project's own test helpers live in
``tests/support/``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FakeLLMServer", "FakeRequest", "Reply"]


def __getattr__(name: str) -> Any:
    # Lazy, so ``python -m mission_widgets.testing.fake_llm`` does not import it twice.
    if name in __all__:
        from . import fake_llm

        return getattr(fake_llm, name)
    raise AttributeError(f"module 'mission_widgets.testing' has no attribute {name!r}")
