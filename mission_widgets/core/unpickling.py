"""Missions and steps pickled by an older release, made whole when they are loaded.

A queued mission waits in its store as a pickle, and the store may be opened by a newer
release: the pickle then lacks every attribute added since (a mission of 2026-11-25 has no
``max_steps``, ``_tally`` or ``result_step``), and holds under their old names those that
became properties since (``steps`` is now ``_steps``). :func:`upgraded_state` moves renamed
attributes to their new names and gives every missing one the value a freshly constructed
object has, so an attribute added to ``__init__`` later needs no entry here: only a rename
does. Standard library only (workers unpickle missions).
"""

from __future__ import annotations

import copy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_DEFAULTS: dict[type, dict[str, Any]] = {}


def upgraded_state(
    state: dict[str, Any], renamed: Mapping[str, str], cls: type, *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """``state`` (a ``__dict__`` as pickled) with ``renamed`` old keys moved to their new
    names and every key that a fresh ``cls(*args, **kwargs)``'s ``__getstate__()`` has and
    ``state`` lacks added with that value (a copy: no two objects share a default list)."""
    for old, new in renamed.items():
        if old in state:
            value = state.pop(old)
            state.setdefault(new, value)
    defaults = _DEFAULTS.get(cls)
    if defaults is None:  # one template object per class and process
        defaults = _DEFAULTS[cls] = cls(*args, **kwargs).__getstate__()
    for key, value in defaults.items():
        if key not in state:
            state[key] = copy.deepcopy(value)
    return state
