"""Check and repair a damaged store (``mission-widgets store check|repair``).

:func:`check_store` reports without changing anything: SQLite's integrity check, files that
no row refers to, rows that have no file. :func:`repair_store` moves a damaged database aside
(never deleting it), builds a fresh one, and rebuilds a row, with its events where the files
allow, for every mission whose files remain: checkpoints give the goal, steps, status and
audit log; a mission file alone is a queued mission (queued again); a log alone a failed one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any

from .store_base import SCHEMA_OBJECTS
from .store_format import STORE_FORMAT, describe_format, ensure_format, read_format
from .store_location import (
    DB_NAME,
    SIDE_FILES,
    SQLITE_HEADER,
    SUBDIRS,
    SUFFIXES,
    StoreError,
    check_store_privacy,
    open_private,
    resolve_root,
)

TERMINAL = ("succeeded", "failed", "cancelled")
NO_FORMAT = (-1, "unknown (no readable database)")


class StoreReport(dict[str, Any]):
    """What check_store/repair_store found: a dict (for code), ``.ok`` and a readable str()."""

    @property
    def ok(self) -> bool:
        return bool(self.get("ok", not self.get("problems")))

    def __str__(self) -> str:
        lines = [f"mission store {self['path']}: {'ok' if self.ok else 'NEEDS ATTENTION'}"]
        for key, value in self.items():
            if key in ("path", "ok"):
                continue
            if isinstance(value, list):
                lines.append(f"  {key.replace('_', ' ')}: {len(value)}")
                lines += [f"    {item}" for item in value[:20]]
                if len(value) > 20:
                    lines.append(f"    ... and {len(value) - 20} more")
            else:
                lines.append(f"  {key.replace('_', ' ')}: {value}")
        return "\n".join(lines)


def _mission_id_of(kind: str, name: str) -> str | None:
    """The mission a file of ``SUBDIRS[kind]`` belongs to (checkpoint side files included)."""
    suffix = SUFFIXES[kind]
    if name.endswith(suffix):
        return name[: -len(suffix)] or None
    if kind == "checkpoint":
        if suffix + "." in name:
            return name[: name.index(suffix + ".")] or None
        if name.endswith(".large"):
            return name[: -len(".large")] or None
    return None


def _files_by_mission(root: str) -> dict[str, dict[str, str]]:
    """{mission id: {kind: path}} for every file in the store's sub-directories."""
    found: dict[str, dict[str, str]] = {}
    for kind, sub in SUBDIRS.items():
        try:
            entries = list(os.scandir(os.path.join(root, sub)))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.endswith(".tmp"):
                continue
            mission_id = _mission_id_of(kind, entry.name)
            if mission_id is not None:
                found.setdefault(mission_id, {}).setdefault(kind, entry.path)
    return found


def _database_state(db: str) -> tuple[str, set[str], tuple[int, str]]:
    """("ok" | what is wrong, the ids of its rows, (its store format, described)), reading
    without writing anything."""
    if not os.path.exists(db):
        return "missing", set(), NO_FORMAT
    if os.path.getsize(db) == 0:
        return "empty (0 bytes)", set(), NO_FORMAT
    with open(db, "rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return "not an SQLite database", set(), NO_FORMAT
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            ids = {r[0] for r in conn.execute("SELECT id FROM missions")}
            store_format = read_format(conn), describe_format(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"unreadable: {exc}", set(), NO_FORMAT
    return ("ok" if result == ["ok"] else "; ".join(result[:5])), ids, store_format


def check_store(path: str | os.PathLike[str]) -> StoreReport:
    """Report on the store at ``path``; changes nothing. ``ok`` is True when the database is
    intact and every file belongs to a row."""
    root, _ = resolve_root(path)
    if not os.path.isdir(root):
        raise StoreError(f"no mission store at {root}")
    problems = []
    try:
        check_store_privacy(root)
    except StoreError as exc:
        problems.append(str(exc))
    integrity, ids, store_format = _database_state(os.path.join(root, DB_NAME))
    if store_format[0] > STORE_FORMAT:
        problems.append(f"store format {store_format[1]}: open it with a newer mission_widgets")
    files = _files_by_mission(root)
    orphans = sorted(
        path
        for mission_id, kinds in files.items()
        if mission_id not in ids
        for path in kinds.values()
    )
    bad_checkpoints = _unreadable_checkpoints(files)
    return StoreReport(
        path=root,
        ok=integrity == "ok" and not orphans and not problems and not bad_checkpoints,
        integrity=integrity,
        store_format=store_format[1],
        orphan_files=orphans,
        corrupt_checkpoints=bad_checkpoints,
        rows_without_files=sorted(mid for mid in ids if mid not in files),
        problems=problems,
    )


def _unreadable_checkpoints(files: dict[str, dict[str, str]]) -> list[str]:
    """Every mission's checkpoint read as JSON: those that are not a mission's state, each
    with why (a symbolic link is not followed)."""
    bad = []
    for kinds in files.values():
        path = kinds.get("checkpoint")
        if not path or not path.endswith(SUFFIXES["checkpoint"]):
            continue
        try:
            if os.path.islink(path):
                raise ValueError("a symbolic link")
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
            if not isinstance(state, dict) or "status" not in state:
                raise ValueError("not a mission's saved state")
        except (OSError, ValueError) as exc:
            bad.append(f"{path}: {exc}")
    return sorted(bad)


def repair_store(path: str | os.PathLike[str]) -> StoreReport:
    """Repair the store at ``path``: a damaged database is moved aside (``store.sqlite.
    damaged-<time>``), and rows (with events where possible) are rebuilt from the files."""
    root, _ = resolve_root(path)
    if not os.path.isdir(root):
        raise StoreError(f"no mission store at {root}")
    check_store_privacy(root)  # before any file of it is read
    db = os.path.join(root, DB_NAME)
    integrity, ids, _ = _database_state(db)
    moved = []
    if integrity != "ok" and os.path.exists(db):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", *SIDE_FILES):
            if os.path.exists(db + suffix):
                target = f"{db}.damaged-{stamp}{suffix}"
                os.rename(db + suffix, target)
                moved.append(target)
        ids = set()
    os.close(open_private(db, os.O_WRONLY | os.O_CREAT))
    conn = sqlite3.connect(db, isolation_level=None)
    problems: list[str] = []
    rebuilt: list[str] = []
    n_events = 0
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        ensure_format(conn, db, SCHEMA_OBJECTS)
        conn.execute("BEGIN IMMEDIATE")
        for mission_id, kinds in sorted(_files_by_mission(root).items()):
            if mission_id in ids:
                continue
            try:
                row, events = _rebuild(mission_id, kinds)
            except (OSError, ValueError) as exc:
                problems.append(f"mission {mission_id}: not rebuilt: {exc}")
                continue
            conn.execute(
                f"INSERT INTO missions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            conn.executemany(
                "INSERT INTO events (mission_id, event, timestamp, payload) VALUES (?, ?, ?, ?)",
                [
                    (mission_id, e["event"], e["timestamp"], json.dumps(e, default=repr))
                    for e in events
                ],
            )
            rebuilt.append(mission_id)
            n_events += len(events)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"repair of mission store {db} failed: {exc}") from None
    finally:
        conn.close()
    return StoreReport(
        path=root,
        ok=not problems,
        integrity_before=integrity,
        moved_aside=moved,
        rows_rebuilt=rebuilt,
        events_rebuilt=n_events,
        problems=problems,
    )


def _rebuild(mission_id: str, kinds: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A row and events for one mission, from whichever of its files remain."""
    now = time.time()
    row: dict[str, Any] = {"id": mission_id, "goal": "(unknown: rebuilt by store repair)"}
    checkpoint = kinds.get("checkpoint")
    if checkpoint and checkpoint.endswith(SUFFIXES["checkpoint"]):
        with open(checkpoint, encoding="utf-8") as handle:
            state = json.load(handle)
        if not isinstance(state, dict):
            raise ValueError(f"{checkpoint} does not hold a mission")
        steps = state.get("steps") or []
        status = str(state.get("status") or "failed")
        when = os.path.getmtime(checkpoint)
        events = [e for e in state.get("audit_log") or [] if isinstance(e, dict) and "event" in e]
        row.update(
            goal=str(state.get("goal") or row["goal"]),
            n_steps=len(steps),
            n_done=sum(1 for s in steps if isinstance(s, dict) and s.get("status") == "done"),
            n_failed=sum(1 for s in steps if isinstance(s, dict) and s.get("status") == "failed"),
            state_json=json.dumps(state, default=repr),
            submitted_at=when,
            started_at=when,
        )
        error = state.get("error")
        if status not in TERMINAL:
            error = (
                "store repaired: the end of this mission was not recorded "
                f"(last saved status {status})"
            )
            status = "failed"
        row.update(status=status, finished_at=when, error=error)
        if not any(e["event"] == "mission_done" for e in events):
            events.append(_repair_event(mission_id, when, status, error))
        for event in events:
            event.setdefault("timestamp", when)
            event["mission_id"] = mission_id
        return row, events
    if "mission" in kinds and "log" not in kinds:
        # Queued, never started: queued again, for the next orchestrator to adopt and run.
        row.update(status="pending", submitted_at=os.path.getmtime(kinds["mission"]))
        row["goal"] = _queued_goal(kinds["mission"]) or row["goal"]
        return row, []
    log = kinds.get("log") or kinds.get("mission") or ""
    when = os.path.getmtime(log) if log else now
    error = f"store repaired: only {os.path.basename(log)} remained; see it for what happened"
    row.update(status="failed", submitted_at=when, finished_at=when, error=error)
    return row, [_repair_event(mission_id, when, "failed", error)]


def _repair_event(mission_id: str, when: float, status: str, error: str | None) -> dict[str, Any]:
    from ..core.events import make_event

    event = make_event(
        "mission_done",
        mission_id,
        error_type=None if status == "succeeded" else "mission_" + status,
        error_message=error,
        status=status,
        source="repair",
    )
    event["timestamp"] = when
    return event


def _queued_goal(path: str) -> str | None:
    """The goal of a queued mission file (the store passed the privacy check)."""
    from .payload import read_payload

    try:
        return str(read_payload(path)["mission"].goal)
    except Exception:  # a broken file: the row says the goal is unknown
        return None
