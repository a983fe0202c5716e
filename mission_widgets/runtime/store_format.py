"""The store's format: which schema a store file has, and bringing an older one up to date.

Every store carries its format number in SQLite's header (``PRAGMA user_version``) and, in
the ``store_info`` table, the package version that created it and each upgrade. Opening a
store (:func:`ensure_format`):

- a store of this format opens without taking the write lock;
- a new file, or an older format, is brought up to date in ONE write transaction that reads
  the format again first: when two processes open an old store at once, the second finds
  it upgraded and changes nothing;
- a newer format than this code knows is refused (:class:`StoreFormatError`, naming the file,
  its format and the release that wrote it) before anything is written.

Formats (bump :data:`STORE_FORMAT` with any change of SCHEMA or ADDED_COLUMNS, and say what
the step does in :data:`FORMATS`):

0. stores of the releases before formats were recorded (2026-11-25 .. 2026-12-02): the
   columns of ADDED_COLUMNS may be missing, no ``store_info``, no ``made_by``;
1. ``store_info``, ``missions.made_by`` (the package version that submitted the mission,
   named when an old mission cannot be run), ``budgets``; every column of ADDED_COLUMNS.

Standard library only: the worker opens stores too.
"""

from __future__ import annotations

import sqlite3
import sys
import time

from .store_base import ADDED_COLUMNS, SCHEMA
from .store_location import StoreError

#: The format this code writes; it reads every older one (upgrading it) and no newer one.
STORE_FORMAT = 1
FORMATS = {
    0: "made before stores recorded a format (releases of 2026-11-25 .. 2026-12-02)",
    1: "store_info, missions.made_by, budgets; every column of ADDED_COLUMNS",
}
#: What an old row whose release is unknown (a format-0 store) says made it.
BEFORE_FORMATS = "a mission_widgets release from before store formats (store format 0)"


class StoreFormatError(StoreError):
    """The store was written by a newer release (a format this code does not know)."""


def package_version() -> str:
    """This package's version (read from the loaded package: no import, no metadata scan)."""
    package = sys.modules.get(__name__.split(".")[0])
    return str(getattr(package, "__version__", "unknown"))


def made_by_label() -> str:
    """What a store or a mission records as its maker: package version and store format."""
    return f"mission_widgets {package_version()} (store format {STORE_FORMAT})"


def read_format(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def read_info(conn: sqlite3.Connection) -> dict[str, str]:
    """The ``store_info`` rows ({} in a format-0 store)."""
    try:
        return dict(conn.execute("SELECT key, value FROM store_info ORDER BY key"))
    except sqlite3.OperationalError:  # no such table: format 0
        return {}


def check_known(db: str, found: int, conn: sqlite3.Connection) -> None:
    """Refuse a format newer than this code's, naming what wrote it; changes nothing."""
    if found <= STORE_FORMAT:
        return
    maker = read_info(conn).get("created_by", "an unknown release")
    raise StoreFormatError(
        f"mission store {db} has store format {found} (created by {maker}); this "
        f"mission_widgets {package_version()} reads store formats up to {STORE_FORMAT}. "
        "Nothing was changed: open it with a newer mission_widgets (pip install -U "
        "mission-widgets), or use another store."
    )


def _is_current(conn: sqlite3.Connection, objects: frozenset[str]) -> bool:
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    columns = {row[1] for row in conn.execute("PRAGMA table_info(missions)")}
    return read_format(conn) == STORE_FORMAT and names >= objects and set(ADDED_COLUMNS) <= columns


def ensure_format(conn: sqlite3.Connection, db: str, objects: frozenset[str]) -> None:
    """Create the schema in a new file, upgrade an older format, refuse a newer one.

    ``conn`` is in autocommit mode; ``objects`` are the names every current store has."""
    check_known(db, read_format(conn), conn)
    if _is_current(conn, objects):
        return  # nothing to write: opening a store of this format takes no write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = read_format(conn)  # again, under the lock: another process may have upgraded
        check_known(db, found, conn)
        if not _is_current(conn, objects):
            _upgrade(conn, found)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _upgrade(conn: sqlite3.Connection, found: int) -> None:
    """Bring the schema to STORE_FORMAT inside the caller's transaction (every step is
    idempotent: CREATE ... IF NOT EXISTS, and a column is added only when missing)."""
    new_file = not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'missions'").fetchone()
    columns = {row[1] for row in conn.execute("PRAGMA table_info(missions)")}
    for column, kind in ADDED_COLUMNS.items():
        if columns and column not in columns:
            conn.execute(f"ALTER TABLE missions ADD COLUMN {column} {kind}")
    for statement in SCHEMA.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    keep = "INSERT OR IGNORE INTO store_info VALUES (?, ?)"
    if new_file:
        conn.execute(keep, ("created_by", made_by_label()))
        conn.execute(keep, ("created_at", now))
    else:
        conn.execute(keep, ("created_by", BEFORE_FORMATS if found == 0 else "unknown"))
        if found != STORE_FORMAT:
            step = f"format {found} -> {STORE_FORMAT} by {made_by_label()} at {now}"
            conn.execute(
                "INSERT INTO store_info VALUES ('upgrades', ?) ON CONFLICT(key) DO UPDATE"
                " SET value = value || '; ' || excluded.value",
                (step,),
            )
    conn.execute(f"PRAGMA user_version = {STORE_FORMAT}")  # in the transaction: all or none


def describe_format(conn: sqlite3.Connection) -> str:
    """One line for ``store check``: the format, who created the store, its upgrades."""
    found = read_format(conn)
    info = read_info(conn)
    if found > STORE_FORMAT:
        known = f"newer than this release reads (up to {STORE_FORMAT})"
    elif found < STORE_FORMAT:
        known = f"older: upgraded to {STORE_FORMAT} when this release opens it"
    else:
        known = "current"
    text = f"{found} ({known}); created by {info.get('created_by', BEFORE_FORMATS)}"
    if info.get("upgrades"):
        text += f"; upgrades: {info['upgrades']}"
    return text
