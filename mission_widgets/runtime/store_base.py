"""What the store modules share: the SQLite schema, the status columns, how connections are
made and how long a write waits for the lock, and the error guard.

The schema is created (or an older store format upgraded, see :mod:`.store_format`) when a
store is opened; ``guarded`` turns any sqlite3/OS error of a public store method into a StoreError.
Standard library only: the worker imports this module.
"""

from __future__ import annotations

import functools
import os
import sqlite3

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TypeVar

    _Method = TypeVar("_Method", bound=Callable[..., Any])


# Statements are split at ";" + newline: a trigger's body keeps its ";"s inside a line.
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
    state_json TEXT,
    claimed_by TEXT,
    claimed_at REAL,
    result_summary TEXT,
    cost_usd REAL DEFAULT 0,
    row_version INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    made_by TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mission_id TEXT NOT NULL,
    event TEXT NOT NULL,
    timestamp REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_mission ON events (mission_id, seq);
CREATE TABLE IF NOT EXISTS mission_states (id TEXT PRIMARY KEY, state_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mission_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_mission ON requests (mission_id);
CREATE TABLE IF NOT EXISTS decisions (
    mission_id TEXT NOT NULL,
    question TEXT NOT NULL,
    step_id TEXT,
    action TEXT NOT NULL,
    decided_by TEXT,
    decided_at REAL NOT NULL,
    PRIMARY KEY (mission_id, question)
);
DROP INDEX IF EXISTS missions_unfinished;
CREATE INDEX IF NOT EXISTS missions_unfinished_by_rowid ON missions (finished_at)
    WHERE finished_at IS NULL;
CREATE INDEX IF NOT EXISTS missions_finished ON missions (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS budgets (
    id TEXT PRIMARY KEY, owner TEXT, created_at REAL NOT NULL, state_json TEXT NOT NULL
);
INSERT OR IGNORE INTO store_meta VALUES ('finished_version', 0);
CREATE TRIGGER IF NOT EXISTS finished_changed_on_update AFTER UPDATE ON missions
    WHEN OLD.finished_at IS NOT NULL OR NEW.finished_at IS NOT NULL
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'finished_version'; END;
CREATE TRIGGER IF NOT EXISTS finished_changed_on_insert AFTER INSERT ON missions
    WHEN NEW.finished_at IS NOT NULL
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'finished_version'; END;
CREATE TRIGGER IF NOT EXISTS finished_changed_on_delete AFTER DELETE ON missions
    WHEN OLD.finished_at IS NOT NULL
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'finished_version'; END;
INSERT OR IGNORE INTO store_meta VALUES ('row_version', 0);
INSERT OR IGNORE INTO store_meta VALUES ('rows_deleted', 0);
CREATE INDEX IF NOT EXISTS missions_by_row_version ON missions (row_version);
CREATE TRIGGER IF NOT EXISTS row_version_on_update AFTER UPDATE ON missions
    WHEN NEW.row_version IS OLD.row_version
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'row_version'; UPDATE missions
        SET row_version = (SELECT value FROM store_meta WHERE key = 'row_version')
        WHERE rowid = NEW.rowid; END;
CREATE TRIGGER IF NOT EXISTS row_version_on_insert AFTER INSERT ON missions
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'row_version'; UPDATE missions
        SET row_version = (SELECT value FROM store_meta WHERE key = 'row_version')
        WHERE rowid = NEW.rowid; END;
CREATE TRIGGER IF NOT EXISTS rows_deleted_on_delete AFTER DELETE ON missions
    BEGIN UPDATE store_meta SET value = value + 1 WHERE key = 'rows_deleted'; END;
"""
#: Columns added since the first release: ALTERed into older stores when they are opened
#: (see :mod:`.store_format`: adding one is a new store format).
#: cost_usd: USD of the mission's model calls, NULL once one of them had no known price
#: (NULL + x stays NULL: unknown is never summed into a number).
#: row_version: the store's change counter when the row last changed (kept by triggers: every
#: writer's change is seen), so status() reads only the rows changed since its last answer.
ADDED_COLUMNS = {
    "claimed_by": "TEXT",
    "claimed_at": "REAL",
    "result_summary": "TEXT",
    "cost_usd": "REAL DEFAULT 0",
    "row_version": "INTEGER NOT NULL DEFAULT 0",
    "message": "TEXT",
    "made_by": "TEXT",
}
SCHEMA_OBJECTS = frozenset(
    {
        "missions",
        "events",
        "requests",
        "decisions",
        "store_meta",
        "store_info",
        "mission_states",
        "budgets",
        "events_by_mission",
        "requests_by_mission",
        "missions_unfinished_by_rowid",
        "missions_finished",
        "finished_changed_on_update",
        "finished_changed_on_insert",
        "finished_changed_on_delete",
        "missions_by_row_version",
        "row_version_on_update",
        "row_version_on_insert",
        "rows_deleted_on_delete",
    }
)

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
    "cost_usd",
    "message",
    "result_summary",
)
#: Longest progress message a row keeps (the ``message`` column of status()).
MESSAGE_CHARS = 300
# A queued row: handed to no backend yet.
QUEUED = "status = 'pending' AND started_at IS NULL AND pid IS NULL AND finished_at IS NULL"


#: Writes from a kernel give up after this long and name the lock holder; workers wait longer
#: (``$MISSION_WIDGETS_WORKER_LOCK_TIMEOUT_SECS`` sets the workers' wait). A worker whose
#: write gives up keeps the event and writes it later (runtime/worker.py: StoreSink).
BUSY_TIMEOUT_SECS = {"kernel": 3.0, "worker": 30.0}
WORKER_LOCK_TIMEOUT_ENV = "MISSION_WIDGETS_WORKER_LOCK_TIMEOUT_SECS"


def busy_timeout(role: str) -> float:
    """Seconds a write of ``role`` waits for the write lock."""
    if role == "worker" and os.environ.get(WORKER_LOCK_TIMEOUT_ENV):
        try:
            value = float(os.environ[WORKER_LOCK_TIMEOUT_ENV])
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            raise ValueError(
                f"${WORKER_LOCK_TIMEOUT_ENV} must be a positive number of seconds, got "
                f"{os.environ[WORKER_LOCK_TIMEOUT_ENV]!r}"
            )
        return value
    return BUSY_TIMEOUT_SECS[role]


def connect_sqlite(
    path: str | os.PathLike[str], timeout: float = 30.0, **options: Any
) -> sqlite3.Connection:
    """A connection as every SQLite file of a store is used: autocommit, WAL, a busy wait."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, **options)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def usage_increments(event: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The ``SET`` additions of an event's usage: its tokens added up, and for a model call
    its cost (``cost_usd = NULL`` when unknown: unknown never sums into a number)."""
    increments = ""
    args: list[Any] = []
    for field in ("prompt_tokens", "completion_tokens"):
        value = event.get(field)
        if isinstance(value, int) and value > 0:
            increments += f", {field} = {field} + ?"
            args.append(value)
    if event.get("event") == "model_call":
        cost = event.get("cost_usd")
        if isinstance(cost, int | float) and cost == cost:
            increments += ", cost_usd = cost_usd + ?"
            args.append(float(cost))
        else:
            increments += ", cost_usd = NULL"
    return increments, args


def guarded(method: _Method) -> _Method:
    """Turn any sqlite3 or OS error of a public method into a StoreError that says what failed."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise self._store_error(exc, method.__name__) from None

    return wrapper  # type: ignore[return-value]
