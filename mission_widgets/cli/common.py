"""What every ``mission-widgets`` command shares: exit codes, the user-facing error, and
opening a store given on the command line (a path that is a file, unreadable or not a store
is a usage error with one clear line, never a traceback)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..core import progress as pg
from .terminal import escape_control

if TYPE_CHECKING:
    from pathlib import Path

    from ..runtime.store import MissionStore
    from ..runtime.store_row import MissionRow

PROG = "mission-widgets"

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A clear, user-facing failure of a command: message and exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def store_location(path: str | None, command: str) -> Path:
    """Where ``--store`` (or the default) points, refusing at once, with exit 2, a path that
    exists but is not a directory or cannot be read (before any store code touches it)."""
    from ..runtime.store import StoreError, resolve_store_path

    try:
        where = resolve_store_path(path).expanduser()
        if where.exists() and not where.is_dir():
            problem = "is a file, not a mission store directory"
        elif where.is_dir() and not os.access(where, os.R_OK | os.X_OK):
            problem = "cannot be read (permission denied)"
        elif not where.exists() and not _nearest_existing(where).is_dir():
            problem = f"is inside {_nearest_existing(where)}, which is a file, not a directory"
        else:
            return where
    except (OSError, StoreError, ValueError) as exc:
        raise CommandError(
            f"{PROG} {command}: store {path or '(default)'}: {exc}", EXIT_USAGE
        ) from None
    raise CommandError(f"{PROG} {command}: {where} {problem}", EXIT_USAGE)


def _nearest_existing(path: Path) -> Path:
    """The closest ancestor of the absolute ``path`` that exists (``/`` at worst)."""
    return next(p for p in path.parents if p.exists())


def open_store(path: str | None, command: str) -> MissionStore:
    """An existing store (``create=False``); exit 2 when it is missing, a file, unreadable
    or damaged, with one line that names it."""
    from ..runtime.store import MissionStore, StoreError
    from ..runtime.store_location import mission_file_count

    where = store_location(path, command)
    # A database gone from beside mission files is damage, which MissionStore names below.
    if not (where / "store.sqlite").exists() and not mission_file_count(str(where)):
        raise CommandError(
            f"{PROG} {command}: no mission store at {where} (no store.sqlite there). Check "
            f"the path, or create one with `{PROG} demo --keep-store --store {where}` or "
            f"MissionOrchestrator(store={str(where)!r}).",
            EXIT_USAGE,
        )
    try:
        return MissionStore(path, create=False)
    except (StoreError, OSError) as exc:
        raise CommandError(f"{PROG} {command}: {exc}", EXIT_USAGE) from None


def resolve_mission_id(store: MissionStore, text: str, command: str) -> MissionRow:
    """The store row of mission ``text``: a full id, or a unique short id / prefix / suffix.
    An empty or blank id is refused: it would match every mission."""
    if not text.strip():
        raise CommandError(
            f"{PROG} {command}: the mission id is empty; give a mission id (or a short id, "
            f"prefix or suffix of one: `{PROG} status` lists them)",
            EXIT_USAGE,
        )
    row = store.row(text)
    if row is not None:
        return row
    matches = [
        r
        for r in store.rows(("id",))
        if pg.short_id(r["id"]) == text or r["id"].endswith(text) or r["id"].startswith(text)
    ]
    if not matches:
        raise CommandError(
            f"{PROG} {command}: no mission {escape_control(repr(text))} in store {store.root}"
        )
    if len(matches) > 1:
        ids = ", ".join(r["id"] for r in matches[:5])
        raise CommandError(
            f"{PROG} {command}: {escape_control(repr(text))} matches {len(matches)} "
            f"missions ({ids})"
        )
    row = store.row(matches[0]["id"])
    if row is None:  # pruned meanwhile
        raise CommandError(f"{PROG} {command}: mission {matches[0]['id']} is gone")
    return row
