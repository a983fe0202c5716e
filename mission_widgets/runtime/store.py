"""The SQLite store: where every mission event lands, and what a restarted kernel reads back.

One directory per store (0700) holding ``store.sqlite`` (WAL, busy timeout), ``missions/``
(the pickled missions handed to workers), ``logs/`` (each mission's stdout/stderr) and
``checkpoints/`` (each mission's JSON save file, rewritten after every step). Files are 0600.

Tables: ``missions`` (one summary row per mission, updated with every event, so
``status()`` reads one table) and ``events`` (the append-only stream, cursor = ``seq``).
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

from ..core.events import make_event

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

DB_NAME = "store.sqlite"
_SUBDIRS = {"mission": "missions", "log": "logs", "checkpoint": "checkpoints"}
_SUFFIXES = {"mission": ".pkl", "log": ".log", "checkpoint": ".json"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS missions (
    id TEXT PRIMARY KEY,
    goal TEXT NOT NULL,
    status TEXT NOT NULL,
    backend TEXT,
    owner TEXT,
    pid INTEGER,
    pid_started REAL,
    submitted_at REAL,
    started_at REAL,
    finished_at REAL,
    last_heartbeat REAL,
    last_activity REAL,
    n_steps INTEGER NOT NULL DEFAULT 0,
    n_done INTEGER NOT NULL DEFAULT 0,
    n_failed INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    stall_reason TEXT,
    model TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    state_json TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mission_id TEXT NOT NULL,
    event TEXT NOT NULL,
    timestamp REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_mission ON events (mission_id, seq);
"""

#: Columns of ``missions`` that status() shows, in order.
STATUS_COLUMNS = (
    "id",
    "goal",
    "status",
    "n_steps",
    "n_done",
    "n_failed",
    "progress",
    "submitted_at",
    "started_at",
    "finished_at",
    "backend",
    "pid",
    "last_heartbeat",
    "last_activity",
    "error",
    "stall_reason",
    "model",
    "prompt_tokens",
    "completion_tokens",
)


class StoreError(RuntimeError):
    """The store cannot be opened or read (names the file)."""


def _state_home() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "mission_widgets")


def _resolve_root(store: str | os.PathLike | None) -> str:
    """None -> default; a bare name -> a named store in the state dir; else a directory."""
    if store is None:
        env = os.environ.get("MISSION_WIDGETS_STORE")
        text = os.path.expanduser(env) if env else os.path.join(_state_home(), "default")
    else:
        text = os.fspath(store)
        if text and os.sep not in text and "/" not in text and not text.startswith("."):
            text = os.path.join(_state_home(), text)
        else:
            text = os.path.expanduser(text)
    return os.path.realpath(text)


# Paths for people and the kernel are pathlib.Path; the worker never imports pathlib (it
# costs start-up), so the store keeps strings and builds Paths on request.


def state_home() -> Path:
    import pathlib

    return pathlib.Path(_state_home())


def default_store_path() -> Path:
    """``$MISSION_WIDGETS_STORE``, else the named store ``default`` in the user's state dir."""
    return resolve_store_path(None)


def resolve_store_path(store: str | os.PathLike | None) -> Path:
    """None -> default; a bare name -> a named store in the state dir; else a directory."""
    import pathlib

    return pathlib.Path(_resolve_root(store))


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except PermissionError:  # pragma: no cover - someone else's directory
        pass


def open_private(
    path: str | os.PathLike, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
) -> int:
    """Open (creating with mode 0600) and return a file descriptor."""
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:  # pragma: no cover
        pass
    return fd


def connect_sqlite(path: str | os.PathLike, **options: Any) -> sqlite3.Connection:
    """A connection as every SQLite file of a store is used: autocommit, WAL, 30 s busy wait."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, **options)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


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


class MissionStore:
    """A store directory. Safe to use from many threads and processes at once."""

    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = True) -> None:
        self._root = _resolve_root(path)
        self._db = os.path.join(self._root, DB_NAME)
        if not create and not os.path.exists(self._db):
            raise StoreError(f"no mission store at {self._root} (no {DB_NAME})")
        if create:
            for folder in ("", *_SUBDIRS.values()):
                _private_dir(os.path.join(self._root, folder))
            if not os.path.exists(self._db):
                os.close(open_private(self._db, os.O_WRONLY | os.O_CREAT))
        self._local = threading.local()
        self._schema_ready = False
        self._ensure_schema()

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        holder = getattr(self._local, "holder", None)
        if holder is None:
            try:
                # Used by its own thread only; closed by whichever thread drops the holder.
                conn = connect_sqlite(self._db, check_same_thread=False)
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"cannot open mission store {self.db_path}: {exc}") from None
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _ensure_schema(self) -> None:
        try:
            self._connect().executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"mission store {self._db} is not usable: {exc}") from None

    # -- paths --------------------------------------------------------------------------------

    def path_of(self, kind: str, mission_id: str) -> str:
        """The file of a mission as a string: kind is mission, log or checkpoint."""
        return os.path.join(self._root, _SUBDIRS[kind], f"{mission_id}{_SUFFIXES[kind]}")

    @property
    def root(self) -> Path:
        import pathlib

        return pathlib.Path(self._root)

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def missions_dir(self) -> Path:
        return self.root / _SUBDIRS["mission"]

    @property
    def logs_dir(self) -> Path:
        return self.root / _SUBDIRS["log"]

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / _SUBDIRS["checkpoint"]

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
        """Add a mission row (or reset a known mission that is submitted again)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO missions"
                " (id, goal, status, backend, owner, submitted_at, n_steps, model)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET status=excluded.status, backend=excluded.backend,"
                " owner=excluded.owner, submitted_at=excluded.submitted_at, pid=NULL,"
                " pid_started=NULL, started_at=NULL, finished_at=NULL, error=NULL,"
                " stall_reason=NULL, state_json=NULL, last_heartbeat=NULL",
                (mission_id, goal, status, backend, owner, time.time(), n_steps, model),
            )

    def set_process(self, mission_id: str, pid: int, pid_started: float | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE missions SET pid=?, pid_started=?, last_heartbeat=?, last_activity=?"
                " WHERE id=?",
                (pid, pid_started, time.time(), time.time(), mission_id),
            )

    def heartbeat(self, mission_id: str, when: float | None = None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE missions SET last_heartbeat=? WHERE id=?",
                (time.time() if when is None else when, mission_id),
            )

    def append_event(
        self,
        event: Mapping[str, Any],
        summary: Mapping[str, Any] | None = None,
        final_state: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one event; update the mission's summary row in the same transaction."""
        payload = json.dumps(event, default=repr)
        with self._write() as conn:
            seq = self._insert_event(conn, event, payload)
            self._update_summary(conn, event["mission_id"], event, summary, final_state)
        return seq

    @staticmethod
    def _insert_event(conn: sqlite3.Connection, event: Mapping[str, Any], payload: str) -> int:
        cur = conn.execute(
            "INSERT INTO events (mission_id, event, timestamp, payload) VALUES (?, ?, ?, ?)",
            (event["mission_id"], event["event"], float(event["timestamp"]), payload),
        )
        return int(cur.lastrowid)

    @staticmethod
    def _update_summary(conn, mission_id, event, summary, final_state) -> None:
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
            sets["started_at"] = ts
            sets["finished_at"] = None
        elif name == "mission_stall":
            sets["stall_reason"] = event.get("reason") or event.get("error_message")
            if event.get("status"):
                sets["status"] = event["status"]
        elif name == "mission_done":
            sets["status"] = event.get("status") or sets.get("status")
            sets["finished_at"] = ts
            sets["error"] = event.get("error_message")
        if final_state is not None:
            sets["state_json"] = json.dumps(final_state, default=repr)
        increments = ""
        args: list[Any] = []
        for field in ("prompt_tokens", "completion_tokens"):
            value = event.get(field)
            if isinstance(value, int) and value > 0:
                increments += f", {field} = {field} + ?"
                args.append(value)
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
        return self._append_unless_finished(event)

    def flag_stalled(self, mission_id: str, reason: str) -> dict[str, Any] | None:
        """Record a runtime-detected stall (reconcile) as a ``mission_stall`` event.

        The row's status becomes ``stalled`` but the mission is not finished: a worker that
        wakes up writes ``running`` again with its next event.
        """
        event = make_event(
            "mission_stall",
            mission_id,
            error_type="stall",
            error_message=reason,
            status="stalled",
            reason=reason,
            source="reconcile",
        )
        return self._append_unless_finished(event)

    def _append_unless_finished(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Append ``event`` written by the kernel, unless the mission has already ended."""
        mission_id = event["mission_id"]
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

    def max_seq(self) -> int:
        row = self._connect().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    def events_since(self, seq: int, limit: int = 5000) -> list[tuple[int, dict[str, Any]]]:
        rows = (
            self._connect()
            .execute(
                "SELECT seq, mission_id, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            )
            .fetchall()
        )
        return [(s, _load_event(s, mid, payload)) for s, mid, payload in rows]

    def events_for(self, mission_id: str) -> list[dict[str, Any]]:
        rows = (
            self._connect()
            .execute(
                "SELECT seq, mission_id, payload FROM events WHERE mission_id=? ORDER BY seq",
                (mission_id,),
            )
            .fetchall()
        )
        return [_load_event(s, mid, payload) for s, mid, payload in rows]

    def row(self, mission_id: str) -> dict[str, Any] | None:
        conn = self._connect()
        cur = conn.execute("SELECT * FROM missions WHERE id=?", (mission_id,))
        values = cur.fetchone()
        if values is None:
            return None
        return dict(zip([c[0] for c in cur.description], values))

    def rows(self, columns: Iterable[str] = ("*",), where: str = "", args=()) -> list[dict]:
        conn = self._connect()
        cur = conn.execute(
            f"SELECT {', '.join(columns)} FROM missions {where} ORDER BY submitted_at, id", args
        )
        names = [c[0] for c in cur.description]
        return [dict(zip(names, values)) for values in cur.fetchall()]

    def rows_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The rows of the missions ``ids`` that exist, by id (one query per 500 ids)."""
        ids = list(dict.fromkeys(ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            where = f"WHERE id IN ({', '.join('?' * len(chunk))})"
            found.update((row["id"], row) for row in self.rows(where=where, args=chunk))
        return found

    def status_records(self, finished: bool | None = None) -> tuple[list[str], list[tuple]]:
        """The status() columns plus ``rowid`` (submission order) as tuples, in rowid order
        (a plain table scan, no sort). ``finished`` selects finished or unfinished rows."""
        where = {
            None: "",
            True: " WHERE finished_at IS NOT NULL",
            False: " WHERE finished_at IS NULL",
        }
        cur = self._connect().execute(
            f"SELECT rowid, {', '.join(STATUS_COLUMNS)} FROM missions{where[finished]}"
            " ORDER BY rowid"
        )
        return ["rowid", *STATUS_COLUMNS], cur.fetchall()

    def finished_signature(self) -> tuple:
        """Changes whenever a finished row is added, removed or re-stamped: a cache key for
        the finished part of status() (finished rows are otherwise immutable)."""
        return tuple(
            self._connect()
            .execute(
                "SELECT COUNT(*), MAX(rowid), TOTAL(finished_at), TOTAL(last_heartbeat)"
                " FROM missions WHERE finished_at IS NOT NULL"
            )
            .fetchone()
        )

    def final_state(self, mission_id: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute("SELECT state_json FROM missions WHERE id=?", (mission_id,))
            .fetchone()
        )
        if row is None or row[0] is None:
            return None
        try:
            return json.loads(row[0])
        except json.JSONDecodeError as exc:
            raise StoreError(
                f"stored final state of mission {mission_id} in {self._db} is corrupt: {exc}"
            ) from None

    def __repr__(self) -> str:
        return f"MissionStore({self._root!r})"


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
