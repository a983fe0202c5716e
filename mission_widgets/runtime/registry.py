"""Backends by name: the registry, ``make_backend`` and ``backend_for_row``.

Backends are named by ``"module:Class"`` and imported only when first asked for, so the
Dask backend (and dask itself) is loaded only by someone who uses it, and no backend module
imports another. ``backend_for_row`` answers for any mission of a store -- the CLI and the
panel use it without an orchestrator.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from .backend import Backend, ExitCallback, Row

if TYPE_CHECKING:
    from .store import MissionStore

_REGISTRY: dict[str, str | type[Backend]] = {
    "subprocess": "mission_widgets.runtime.subprocess_backend:SubprocessBackend",
    "thread": "mission_widgets.runtime.thread_backend:ThreadBackend",
    "dask": "mission_widgets.runtime.dask_kernel:DaskBackend",
}
_LOCK = threading.Lock()


def register_backend(name: str, target: str | type[Backend]) -> None:
    """Make ``name`` a backend: a :class:`Backend` subclass or its ``"module:Class"`` path."""
    if not isinstance(target, str) and not (
        isinstance(target, type) and issubclass(target, Backend)
    ):
        raise TypeError(f"backend {name!r} must be a Backend subclass or 'module:Class'")
    with _LOCK:
        _REGISTRY[name] = target


def known_backends() -> list[str]:
    with _LOCK:
        return list(_REGISTRY)


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name`` (imported now if it was given by path)."""
    with _LOCK:
        target = _REGISTRY.get(name) if isinstance(name, str) else None
    if target is None:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(known_backends())}")
    if isinstance(target, str):
        module_name, _, class_name = target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        with _LOCK:
            _REGISTRY[name] = cls
        return cls
    return target


def make_backend(
    spec: str | Backend, store: MissionStore, on_exit: ExitCallback, **options: Any
) -> Backend:
    """The backend an orchestrator runs its missions on: an instance is used as it is."""
    if isinstance(spec, Backend):
        return spec
    return backend_class(spec)(store, on_exit, **options)


def backend_for_row(row: Row, store: MissionStore, current: Backend | None = None) -> Backend:
    """The backend that can answer for the mission of ``row``: ``current`` (the caller's own
    backend, which knows its processes and threads) when the row names it, else an observer
    of the row's backend; a backend not registered here gets the base answers (cannot tell,
    cannot stop)."""
    name = row.get("backend")
    if current is not None and (name is None or name == current.name):
        return current
    try:
        cls = backend_class(name) if name else Backend
    except (ValueError, ImportError):
        cls = Backend
    return cls.observer(store)
