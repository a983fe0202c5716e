"""The SQLite store: where every mission event lands, and what a restarted kernel reads back.

One private directory per store (0700, see :mod:`.store_location` for where stores live and
when one is refused) holding ``store.sqlite`` (WAL), ``missions/`` (the pickled missions
handed to workers), ``logs/`` (each mission's stdout/stderr) and ``checkpoints/`` (each
mission's save file). Files are 0600; SQLite gives its ``-wal``/``-shm`` the database's mode.

Tables: ``missions`` (one summary row per mission, updated with every event, so ``status()``
reads one table), ``events`` (the append-only stream, cursor = ``seq``), ``requests`` (cancel,
decisions and explanations sent by other processes, each taken once), ``budgets``
(orchestrator budgets, :mod:`.store_budget`), ``store_meta`` and ``store_info``: with the
file header's ``user_version``, the store's format (an older format is upgraded when opened,
a newer one refused: :mod:`.store_format`).

Every public method raises :class:`StoreError` naming the file and the SQLite/OS error,
never a raw ``sqlite3`` error. Reads never wait (WAL). A kernel's writes wait a few seconds
for the write lock, then name its holder; a worker's wait long (``role``).
Uses only the standard library so worker processes start fast.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from ..core.checks import bound_fields
from ..core.events import make_event
from ..core.ids import validate_mission_id
from ..core.status import health_reason
from .store_base import (
    BUSY_TIMEOUT_SECS,
    MESSAGE_CHARS,
    SCHEMA_OBJECTS,
    STATUS_COLUMNS,
    WORKER_LOCK_TIMEOUT_ENV,
    busy_timeout,
    connect_sqlite,
    guarded,
    usage_increments,
)
from .store_budget import StoreBudgets
from .store_format import STORE_FORMAT, StoreFormatError, ensure_format, made_by_label
from .store_history import StoreRequestsAndHistory
from .store_location import (
    DB_NAME,
    REPAIR_HINT,
    SUBDIRS,
    SUFFIXES,
    StoreError,
    StorePathError,
    describe_store_path,
    open_private,
    prepare_root,
    resolve_root,
    resolve_store_path,
)
from .store_status import StoreStatusReads

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from .store_repair import check_store, repair_store
    from .store_row import MissionRow

__all__ = [
    "BUSY_TIMEOUT_SECS",
    "DB_NAME",
    "STATUS_COLUMNS",
    "STORE_FORMAT",
    "WORKER_LOCK_TIMEOUT_ENV",
    "MissionStore",
    "StoreError",
    "StoreFormatError",
    "StorePathError",
    "check_store",
    "connect_sqlite",
    "describe_store_path",
    "open_private",
    "repair_store",
    "resolve_store_path",
]


#: Goals and final states larger than this are not kept inline in a row.
LARGE_VALUE_BYTES = 1 << 20


def __getattr__(name: str) -> Any:
    """``MissionRow``, ``check_store`` and ``repair_store`` load on first use (not in workers)."""
    if name == "MissionRow":
        from .store_row import MissionRow

        return MissionRow
    if name in ("check_store", "repair_store"):
        from . import store_repair

        return getattr(store_repair, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ConnectionHolder:
    """Closes a thread's connection when the thread ends (its thread-local is dropped), so
    short-lived step threads leave no connection to the garbage collector."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        try:
            self.conn.close()
        except sqlite3.Error:  # pragma: no cover - closing twice or at shutdown
            pass

    __del__ = close


class MissionStore(StoreStatusReads, StoreRequestsAndHistory, StoreBudgets):
    """A store directory. Safe to use from many threads and processes at once.

    ``role="kernel"`` (the default) waits at most a few seconds for the write lock and then
    raises StoreError naming the process holding it; ``role="worker"`` waits 30 s.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        role: str = "kernel",
    ) -> None:
        if role not in BUSY_TIMEOUT_SECS:
            raise ValueError(f"role must be one of {sorted(BUSY_TIMEOUT_SECS)}, got {role!r}")
        self.role = role
        self.busy_timeout = busy_timeout(role)
        self._root, self.reason = resolve_root(path)
        self._db = os.path.join(self._root, DB_NAME)
        self._local = threading.local()
        self._root_path: Path | None = None
        prepare_root(self._root, create=create)
        self._ensure_schema()

    # -- connections and errors ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        holder = getattr(self._local, "holder", None)
        if holder is None:
            # Used by its own thread only; closed by whichever thread drops the holder.
            conn = connect_sqlite(self._db, self.busy_timeout, check_same_thread=False)
            holder = self._local.holder = _ConnectionHolder(conn)
        return holder.conn

    def close(self) -> None:
        """Close this thread's connection."""
        holder = getattr(self._local, "holder", None)
        if holder is not None:
            holder.close()
            self._local.holder = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        if getattr(self._local, "batching", False):
            yield conn  # part of this thread's batch(): it commits (or rolls back) once
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:  # pragma: no cover - the error raised below says why
                    pass
            raise

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write this thread makes inside the block (a writer of
        many events pays one write lock and one commit, not one per event). An error rolls
        all of them back and is raised as StoreError; nested batches join the outer one."""
        if getattr(self._local, "batching", False):
            yield
            return
        try:
            with self._write():
                self._local.batching = True
                try:
                    yield
                finally:
                    self._local.batching = False
        except (sqlite3.Error, OSError) as exc:
            raise self._store_error(exc, "batch") from None

    def _store_error(self, exc: BaseException, action: str) -> StoreError:
        text = str(exc)
        lowered = text.lower()
        where = f"mission store {self._db}"
        if "locked" in lowered or "busy" in lowered:
            from .store_lock import describe_holder

            try:
                running = [
                    (mid, pid)
                    for mid, pid in self._connect().execute(
                        "SELECT id, pid FROM missions WHERE finished_at IS NULL AND pid IS NOT NULL"
                    )
                ]
            except sqlite3.Error:
                running = []
            waited = self.busy_timeout
            return StoreError(
                f"{where} is locked: {action}() waited {waited:g} s for the write lock, "
                f"{describe_holder(self._db, running)}"
            )
        if "not a database" in lowered or "malformed" in lowered:
            return StoreError(
                f"{where} is damaged ({text}): it is not a readable SQLite database. Nothing "
                f"was changed; `{REPAIR_HINT.format(root=self._root)}` moves it aside and "
                "rebuilds the rows from checkpoints and logs."
            )
        if "full" in lowered or "no space" in lowered:
            return StoreError(f"{where}: {action}() failed, the disk is full ({text})")
        if "readonly" in lowered or "read-only" in lowered:
            return StoreError(f"{where}: {action}() failed, the store is read-only ({text})")
        return StoreError(f"{where}: {action}() failed: {type(exc).__name__}: {text}")

    @guarded
    def _ensure_schema(self) -> None:
        conn = self._connect()
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if names and "missions" not in names:
            raise StoreError(
                f"{self._db} is an SQLite database of something else (tables: "
                f"{', '.join(sorted(names)[:5])}), not a mission store; refusing to change it"
            )
        ensure_format(conn, self._db, SCHEMA_OBJECTS)  # create, upgrade, or refuse a newer one

    # -- paths --------------------------------------------------------------------------------

    def path_of(self, kind: str, mission_id: str) -> str:
        """The file of a mission as a string: kind is mission, log or checkpoint. The id must
        be a plain name (MissionValidationError): no file is ever made outside the store."""
        validate_mission_id(mission_id)
        return os.path.join(self._root, SUBDIRS[kind], f"{mission_id}{SUFFIXES[kind]}")

    @property
    def root(self) -> Path:
        if self._root_path is None:  # built on first use: workers never import pathlib
            import pathlib

            self._root_path = pathlib.Path(self._root)
        return self._root_path

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / SUBDIRS["checkpoint"]

    def mission_file(self, mission_id: str) -> Path:
        return self._path("mission", mission_id)

    def log_file(self, mission_id: str) -> Path:
        return self._path("log", mission_id)

    def checkpoint_file(self, mission_id: str) -> Path:
        return self._path("checkpoint", mission_id)

    def _path(self, kind: str, mission_id: str) -> Path:
        import pathlib

        return pathlib.Path(self.path_of(kind, mission_id))

    # -- writes -------------------------------------------------------------------------------

    @guarded
    def register(
        self,
        mission_id: str,
        goal: str,
        *,
        backend: str,
        owner: str | None,
        n_steps: int = 0,
        model: str | None = None,
        status: str = "pending",
    ) -> None:
        """Add a mission row (or reset a known mission that is submitted again); the id must be
        a plain name (MissionValidationError naming it)."""
        validate_mission_id(mission_id)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO missions"
                " (id, goal, status, backend, owner, submitted_at, n_steps, model, made_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET status=excluded.status, backend=excluded.backend,"
                " made_by=excluded.made_by,"
                " owner=excluded.owner, submitted_at=excluded.submitted_at, pid=NULL,"
                " pid_started=NULL, started_at=NULL, finished_at=NULL, error=NULL,"
                " stall_reason=NULL, state_json=NULL, last_heartbeat=NULL,"
                " claimed_by=NULL, claimed_at=NULL",
                (
                    mission_id,
                    _row_goal(goal),
                    status,
                    backend,
                    owner,
                    time.time(),
                    n_steps,
                    model,
                    made_by_label(),
                ),
            )
            conn.execute("DELETE FROM mission_states WHERE id=?", (mission_id,))

    @guarded
    def set_process(self, mission_id: str, pid: int, pid_started: float | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE missions SET pid=?, pid_started=?, last_heartbeat=?, last_activity=?"
                " WHERE id=?",
                (pid, pid_started, time.time(), time.time(), mission_id),
            )

    @guarded
    def heartbeat(self, mission_id: str, when: float | None = None) -> bool:
        """Stamp the mission's heartbeat; False when its row has ended (or is gone): another
        process recorded its end (a cancel), and its worker should stop."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE missions SET last_heartbeat=? WHERE id=? AND finished_at IS NULL",
                (time.time() if when is None else when, mission_id),
            )
            return cur.rowcount == 1

    @guarded
    def append_event(
        self,
        event: Mapping[str, Any],
        summary: Mapping[str, Any] | None = None,
        final_state: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one event; update the mission's summary row in the same transaction.

        A mission whose end another process recorded first (a cancel records the end, then
        stops the worker) keeps that end: the worker's later events are appended but change
        no summary, and a second ``mission_done`` is not written (returns 0).
        """
        event = bound_fields(event)  # errors, tracebacks, messages: at most TEXT_LIMIT each
        summary = bound_fields(summary)
        payload = json.dumps(event, default=repr)
        state_json = None
        if final_state is not None:
            state_json = self._state_json(event["mission_id"], bound_fields(final_state))
        with self._write() as conn:
            ended = conn.execute(
                "SELECT finished_at FROM missions WHERE id=?", (event["mission_id"],)
            ).fetchone()
            if ended is not None and ended[0] is not None and event["event"] != "mission_start":
                if event["event"] == "mission_done":
                    return 0  # the mission ends once: the end recorded first stands
                return self._insert_event(conn, event, payload)
            seq = self._insert_event(conn, event, payload)
            self._update_summary(conn, event["mission_id"], event, summary, state_json)
        return seq

    def _state_json(self, mission_id: str, state: Mapping[str, Any]) -> str:
        """The final state as stored in the row: inline, or a reference to a file when large."""
        text = json.dumps(state, default=repr)
        if len(text) <= LARGE_VALUE_BYTES:
            return text
        relative = os.path.join(SUBDIRS["checkpoint"], f"{mission_id}.large", "state.json")
        path = os.path.join(self._root, relative)
        if os.path.islink(os.path.dirname(path)):
            raise OSError(f"{os.path.dirname(path)} is a symbolic link: refusing to follow it")
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with os.fdopen(open_private(path + ".tmp"), "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(path + ".tmp", path)
        return json.dumps({"$state_file": relative, "bytes": len(text)})

    @staticmethod
    def _insert_event(conn: sqlite3.Connection, event: Mapping[str, Any], payload: str) -> int:
        cur = conn.execute(
            "INSERT INTO events (mission_id, event, timestamp, payload) VALUES (?, ?, ?, ?)",
            (event["mission_id"], event["event"], float(event["timestamp"]), payload),
        )
        return int(cur.lastrowid or 0)

    @staticmethod
    def _update_summary(
        conn: sqlite3.Connection,
        mission_id: str,
        event: Mapping[str, Any],
        summary: Mapping[str, Any] | None,
        state_json: str | None,
    ) -> None:
        sets: dict[str, Any] = {}
        name = event["event"]
        ts = float(event["timestamp"])
        # A stall flag written by reconcile() is not the mission's progress: counting it
        # would hide the very lack of progress it reports.
        if name != "heartbeat" and event.get("source") != "reconcile":
            sets["last_activity"] = ts
        if summary:
            sets.update(summary)
        if name == "mission_start":
            sets.update(started_at=ts, finished_at=None, message=None)
        elif name == "progress" and event.get("message"):
            sets["message"] = str(event["message"])[:MESSAGE_CHARS]
        elif name == "mission_stall":
            reason = health_reason(event)  # a health flag; the mission stays running
            if reason is not None:
                sets["stall_reason"] = reason
        elif name == "mission_recovered":
            sets["stall_reason"] = None
        elif name == "mission_done":
            sets["status"] = event.get("status") or sets.get("status")
            sets["finished_at"] = ts
            sets["error"] = event.get("error_message")
            sets["result_summary"] = event.get("result_summary")
        if state_json is not None:
            # Kept beside the row, not in it: status() scans narrow rows.
            conn.execute(
                "INSERT OR REPLACE INTO mission_states (id, state_json) VALUES (?, ?)",
                (mission_id, state_json),
            )
        increments, args = usage_increments(event)
        if not sets and not increments:
            return
        assignments = ", ".join(f"{key} = ?" for key in sets) or "id = id"
        conn.execute(
            f"UPDATE missions SET {assignments}{increments} WHERE id = ?",
            [*sets.values(), *args, mission_id],
        )

    def finish_if_unfinished(
        self, mission_id: str, status: str, error: str | None, **extra: Any
    ) -> dict[str, Any] | None:
        """Atomically end a mission that has no terminal status yet (cancel, dead worker).

        Returns the event written, or None when the mission had already finished.
        """
        event = make_event(
            "mission_done",
            mission_id,
            error_type="mission_" + status,
            error_message=error,
            status=status,
            **extra,
        )
        return self.append_unless_finished(event)

    @guarded
    def append_unless_finished(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Append ``event`` written by the kernel, unless the mission has already ended."""
        mission_id = event["mission_id"]
        event = bound_fields(event)
        with self._write() as conn:
            row = conn.execute(
                "SELECT finished_at FROM missions WHERE id=?", (mission_id,)
            ).fetchone()
            if row is None or row[0] is not None:
                return None
            self._insert_event(conn, event, json.dumps(event, default=repr))
            self._update_summary(conn, mission_id, event, None, None)
        return event

    # -- reads --------------------------------------------------------------------------------

    @guarded
    def max_seq(self) -> int:
        row = self._connect().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    @guarded
    def events_since(self, seq: int, limit: int = 5000) -> list[tuple[int, dict[str, Any]]]:
        rows = (
            self._connect()
            .execute(
                "SELECT seq, mission_id, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            .fetchall()
        )
        return [(row[0], event) for row, event in zip(rows, _load_events(rows))]

    @guarded
    def events_for(self, mission_id: str) -> list[dict[str, Any]]:
        rows = (
            self._connect()
            .execute(
                "SELECT seq, mission_id, payload FROM events WHERE mission_id=? ORDER BY seq",
                (mission_id,),
            )
            .fetchall()
        )
        return _load_events(rows)

    @guarded
    def events_of(
        self, ids: Iterable[str] | None = None, skip: Iterable[str] = ()
    ) -> list[dict[str, Any]]:
        """The events of the missions ``ids`` (all by default), in the order they were
        written, less those named in ``skip``: SQLite drops them before any payload is
        decoded. One query for all (one per 500 ids), in one read snapshot."""
        skipped = tuple(skip)
        where = f"event NOT IN ({', '.join('?' * len(skipped))})" if skipped else "1"
        conn = self._connect()
        if ids is None:
            rows = conn.execute(
                f"SELECT seq, mission_id, payload FROM events WHERE {where} ORDER BY seq",
                skipped,
            ).fetchall()
        else:
            wanted, rows = list(dict.fromkeys(ids)), []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows += conn.execute(
                    f"SELECT seq, mission_id, payload FROM events WHERE {where}"
                    f" AND mission_id IN ({', '.join('?' * len(chunk))}) ORDER BY seq",
                    (*skipped, *chunk),
                ).fetchall()
            if len(wanted) > 500:
                rows.sort()
        return _load_events(rows)

    @guarded
    def row(self, mission_id: str) -> MissionRow | None:
        cur = self._connect().execute("SELECT * FROM missions WHERE id=?", (mission_id,))
        values = cur.fetchone()
        if values is None:
            return None
        found: Any = dict(zip([c[0] for c in cur.description], values))
        return found

    @guarded
    def rows(
        self, columns: Iterable[str] = ("*",), where: str = "", args: Iterable[Any] = ()
    ) -> list[MissionRow]:
        """Rows (only ``columns``; all by default) in submission order."""
        cur = self._connect().execute(
            f"SELECT {', '.join(columns)} FROM missions {where} ORDER BY submitted_at, id",
            tuple(args),
        )
        names = [c[0] for c in cur.description]
        found: list[Any] = [dict(zip(names, values)) for values in cur.fetchall()]
        return found

    def rows_by_id(self, ids: Iterable[str]) -> dict[str, MissionRow]:
        """The rows of the missions ``ids`` that exist, by id (one query per 500 ids)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, MissionRow] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            where = f"WHERE id IN ({', '.join('?' * len(chunk))})"
            found.update((row["id"], row) for row in self.rows(where=where, args=chunk))
        return found

    @guarded
    def final_state(self, mission_id: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute(
                # missions.state_json: stores written before mission_states (and repairs)
                "SELECT COALESCE(m.state_json, s.state_json) FROM missions AS m"
                " LEFT JOIN mission_states AS s ON s.id = m.id WHERE m.id=?",
                (mission_id,),
            )
            .fetchone()
        )
        if row is None or row[0] is None:
            return None
        try:
            state = json.loads(row[0])
            if isinstance(state, dict) and set(state) == {"$state_file", "bytes"}:
                with open(os.path.join(self._root, state["$state_file"]), encoding="utf-8") as f:
                    state = json.load(f)
        except ValueError as exc:
            raise StoreError(
                f"stored final state of mission {mission_id} in {self._db} is corrupt: {exc}"
            ) from None
        return state if isinstance(state, dict) else None

    def __repr__(self) -> str:
        return f"MissionStore({self._root!r})"


def _row_goal(goal: str) -> str:
    """A goal as kept in the row: larger than LARGE_VALUE_BYTES, a summary (the whole goal
    is kept once, in a file beside the checkpoint)."""
    if len(goal) * 4 <= LARGE_VALUE_BYTES:  # the common case, without encoding the goal
        return goal
    size = len(goal.encode("utf-8", "replace"))
    if size <= LARGE_VALUE_BYTES:
        return goal
    return f"{goal[:200]}... [goal of {size:,} bytes, kept in a file beside the checkpoint]"


_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__


def _load_events(rows: Iterable[tuple[int, str, str]]) -> list[dict[str, Any]]:
    """:func:`_load_event` of each row, without json.loads' own Python layers for the
    payloads that are one plain JSON object (all that the store writes): for many events,
    those layers cost as much as the decoding itself."""
    events = []
    for seq, mission_id, payload in rows:
        try:
            event, end = _scan_json(payload, 0)
        except (StopIteration, ValueError, TypeError):
            event = end = None
        if type(event) is dict and end == len(payload):
            event["seq"] = seq
        else:  # whitespace around it, not an object, corrupt: json.loads says which
            event = _load_event(seq, mission_id, payload)
        events.append(event)
    return events


def _load_event(seq: int, mission_id: str, payload: str) -> dict[str, Any]:
    try:
        event = json.loads(payload)
        if not isinstance(event, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        # One bad row must not hide the others: surface it as an event of its own.
        return make_event(
            "store_error",
            mission_id,
            error_type="store_error",
            error_message=f"event #{seq} of mission {mission_id} is corrupt ({exc})",
            seq=seq,
        )
    event["seq"] = seq
    return event
