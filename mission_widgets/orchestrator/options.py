"""What MissionOrchestrator(...) accepts, checked before anything is made: numbers that are
finite and in range, a ``store=`` of a kind that names a store, and no unknown option (a
typo such as ``max_concurent=3`` is a TypeError that names it and suggests the close match,
not "backend 'subprocess' takes no options")."""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Mapping
from typing import Any

from ..core.checks import number_option
from ..runtime.backend import Backend
from ..runtime.registry import backend_class
from ..runtime.store import MissionStore

#: The orchestrator's own options (the rest go to its backend).
ORCHESTRATOR_OPTIONS = (
    "max_concurrent",
    "model",
    "session",
    "backend",
    "store",
    "heartbeat_secs",
    "heartbeat_timeout_secs",
    "cancel_grace_secs",
    "budget",
    "tracer_provider",
)


def check_numbers(
    heartbeat_secs: Any, heartbeat_timeout_secs: Any, cancel_grace_secs: Any, no_progress_secs: Any
) -> tuple[float, float | None, float, float]:
    """The timing options as floats, or ValueError naming the one that is wrong."""
    beat = number_option("heartbeat_secs", heartbeat_secs, positive=True)
    timeout = number_option(
        "heartbeat_timeout_secs", heartbeat_timeout_secs, positive=True, allow_none=True
    )
    grace = number_option("cancel_grace_secs", cancel_grace_secs)
    quiet = number_option("no_progress_secs", no_progress_secs, positive=True)
    assert beat is not None and grace is not None and quiet is not None  # not allow_none
    return beat, timeout, grace, quiet


def check_store(store: Any) -> None:
    if store is not None and not isinstance(store, str | os.PathLike | MissionStore):
        raise TypeError(
            "store must be a directory path, a store name, a MissionStore or None, got "
            f"{type(store).__name__}: {store!r}"
        )


def backend_option_names(backend: str | Backend) -> tuple[str, ...] | None:
    """The keyword options the backend named ``backend`` takes (None: it is unknown, and
    making it will say so); an instance takes none (it is made already)."""
    if isinstance(backend, Backend):
        return ()
    try:
        cls = backend_class(backend)
    except (ValueError, ImportError, TypeError):
        return None
    if cls.__init__ is Backend.__init__:
        return ()
    # After self, store and on_exit. A **options of a backend goes up to Backend.__init__,
    # which refuses any: only the named ones count.
    parameters = list(inspect.signature(cls.__init__).parameters.values())[3:]
    return tuple(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD)


def check_backend_options(backend: str | Backend, options: Mapping[str, Any]) -> None:
    """TypeError naming an option that neither the orchestrator nor its backend takes."""
    if not options:
        return
    accepted = backend_option_names(backend)
    if accepted is None:
        return
    for name in options:
        if name in accepted:
            continue
        close = difflib.get_close_matches(name, [*ORCHESTRATOR_OPTIONS, *accepted], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = getattr(backend, "name", backend)
        takes = ", ".join(accepted) if accepted else "no options of its own"
        raise TypeError(
            f"MissionOrchestrator() got an unknown option {name!r}{hint} (it takes "
            f"{', '.join(ORCHESTRATOR_OPTIONS)}; the {where!r} backend takes {takes})"
        )
