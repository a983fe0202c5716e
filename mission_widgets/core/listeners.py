"""Calling listeners (hooks, event sinks, subscribers) so that one that raises only warns."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping

from .errors import describe_error

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def listener_name(listener: Any) -> str:
    """A readable name for a listener: its qualified name, else its repr."""
    name = getattr(listener, "__qualname__", None) or getattr(listener, "__name__", None)
    return name if isinstance(name, str) else repr(listener)


def dispatch(
    listeners: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]],
    *args: Any,
    what: str = "listener",
) -> None:
    """Call each listener with ``args``; a listener that raises becomes a RuntimeWarning.

    ``listeners`` is an iterable of callables, or a mapping ``name -> callable`` when the
    caller knows better names (hooks). The warning reads "<what> <name> raised <error>";
    the other listeners still run. BaseExceptions (KeyboardInterrupt...) pass through.
    """
    if isinstance(listeners, Mapping):
        named = list(listeners.items())
    else:
        named = [(listener_name(listener), listener) for listener in listeners]
    for name, listener in named:
        try:
            listener(*args)
        except Exception as exc:
            warnings.warn(
                f"{what} {name} raised {describe_error(exc)}", RuntimeWarning, stacklevel=2
            )
