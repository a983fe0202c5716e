"""Mission ids are plain names: they become file names in a store, so they must not be paths."""

from __future__ import annotations

import os
import re
import time

from .errors import MissionValidationError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Longest mission id accepted.
MAX_ID_LENGTH = 128
_ID = re.compile(r"[A-Za-z0-9_.-]+")


def validate_mission_id(value: Any, where: str = "mission id") -> str:
    """Return ``value`` if it is a valid mission id, else raise MissionValidationError naming it.

    Valid: a str of 1..128 letters, digits, ``_``, ``.`` and ``-`` that does not start with a dot
    (so it is never a path, never hidden, never ``.`` or ``..``).
    """
    if not isinstance(value, str):
        raise MissionValidationError(
            f"{where} must be a string, got {type(value).__name__} {value!r}"
        )
    if not value or len(value) > MAX_ID_LENGTH:
        raise MissionValidationError(
            f"{where} {value[:200]!r} must have 1 to {MAX_ID_LENGTH} characters "
            f"(it has {len(value)})"
        )
    if not _ID.fullmatch(value) or value.startswith("."):
        raise MissionValidationError(
            f"{where} {value!r} is not a plain name: use letters, digits, '_', '.' and '-', "
            "not starting with '.'"
        )
    return value


def new_mission_id() -> str:
    """A fresh id, ``mission_<UTC time>_<random>``."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    return validate_mission_id(f"mission_{stamp}_{os.urandom(4).hex()}")
