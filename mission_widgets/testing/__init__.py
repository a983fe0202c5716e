"""Helpers for tests, notebooks and CI (nothing here is imported by the engine)."""

from __future__ import annotations

from typing import Any

__all__ = ["FakeLLMServer", "FakeRequest", "Reply"]


def __getattr__(name: str) -> Any:
    # Lazy, so ``python -m mission_widgets.testing.fake_llm`` does not import it twice.
    if name in __all__:
        from . import fake_llm

        return getattr(fake_llm, name)
    raise AttributeError(f"module 'mission_widgets.testing' has no attribute {name!r}")
