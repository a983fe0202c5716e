"""The reads behind ``status()`` and attach: parts of MissionStore, each costing in
proportion to what it returns.

Every row carries ``row_version``, the store's change counter when the row last changed
(store_base's triggers keep both for any writer), so ``status_records(changed_since=v)``
reads only the rows changed since ``v`` through an index, and ``change_versions()`` says in
constant time whether anything changed or was removed. ``attach_columns`` is the one scan an
attaching orchestrator makes, as columns.
"""

from __future__ import annotations

from .store_base import QUEUED, STATUS_COLUMNS, guarded

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Collection
    from typing import Any


class StoreStatusReads:
    """Mixed into MissionStore (which provides the connection)."""

    if TYPE_CHECKING:

        def _connect(self) -> sqlite3.Connection: ...

    @guarded
    def status_records(
        self, finished: bool | None = None, *, changed_since: int | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The status() columns plus ``rowid`` (submission order) as tuples, in rowid order.
        ``finished`` selects finished or unfinished rows (an index finds the unfinished ones);
        ``changed_since`` (a :meth:`change_versions` version) only the rows changed after it
        (an index on ``row_version`` finds them: the cost is that of the change)."""
        # Unfinished rows: a partial index whose entries are in rowid order (no scan, no sort).
        where = "" if finished is None else " WHERE finished_at IS NULL"
        where = where.replace(" IS NULL", " IS NOT NULL") if finished else where
        args: tuple[Any, ...] = ()
        if changed_since is not None:
            where += (" AND" if where else " WHERE") + " row_version > ?"
            args = (int(changed_since),)
        cur = self._connect().execute(
            f"SELECT rowid, {', '.join(STATUS_COLUMNS)} FROM missions{where} ORDER BY rowid", args
        )
        return ["rowid", *STATUS_COLUMNS], cur.fetchall()

    @guarded
    def change_versions(self) -> tuple[int, int]:
        """``(row_version, rows_deleted)``: grow with every row added or changed, and removed
        (by any process: triggers keep them); ``status_records(changed_since=...)``."""
        query = "SELECT key, value FROM store_meta WHERE key IN ('row_version', 'rows_deleted')"
        found = dict(self._connect().execute(query))
        return int(found.get("row_version", 0)), int(found.get("rows_deleted", 0))

    @guarded
    def finished_signature(self) -> tuple[Any, ...]:
        """Changes whenever a finished row is added, removed or changed (a trigger counts):
        a cache key for the finished part of status(), read in constant time."""
        query = "SELECT value FROM store_meta WHERE key='finished_version'"
        row = self._connect().execute(query).fetchone()
        return (row[0] if row else None,)

    @guarded
    def queued_owners(self) -> list[str]:
        """The owners of queued rows, each once (an index finds the unfinished rows)."""
        query = f"SELECT DISTINCT owner FROM missions WHERE {QUEUED} AND owner IS NOT NULL"
        return [owner for (owner,) in self._connect().execute(query)]

    @guarded
    def attach_columns(
        self, skip_queued_of: Collection[str] = ()
    ) -> tuple[list[str], list[str], bytes]:
        """``(ids, statuses, finished)`` of every row in submission order, as columns
        (``finished[i]`` is 1 or 0), less the queued rows of the owners ``skip_queued_of``.

        Columns, not rows: each column comes back as one string that is split in C, so
        attaching to 100,000 missions makes no Python object per row beyond the ids and
        statuses themselves (a tuple per row, and the passes over them, were most of it).
        Ids are plain names (core.ids) and statuses words: neither holds the separator;
        a row that would (written by something else) is caught by the count and read as
        tuples instead."""
        where, args = "", tuple(skip_queued_of)
        if args:
            where = f" WHERE NOT ({QUEUED} AND owner IN ({', '.join('?' * len(args))}))"
        # An aggregate over an ordered subquery reads it in that order (SQLite does not
        # flatten an ORDER BY subquery into an aggregate).
        rows = f"SELECT id, status, finished_at FROM missions{where} ORDER BY submitted_at, id"
        n, ids, statuses, finished = (
            self._connect()
            .execute(
                "SELECT count(*), group_concat(id, char(31)), group_concat(status, char(31)),"
                f" group_concat(finished_at IS NOT NULL, '') FROM ({rows})",
                args,
            )
            .fetchone()
        )
        if not n:
            return [], [], b""
        columns = ids.split(_SEPARATOR), statuses.split(_SEPARATOR), finished.encode()
        if len(columns[0]) == len(columns[1]) == len(columns[2]) == n:
            return columns[0], columns[1], columns[2].translate(_FLAGS)
        tuples = self._connect().execute(
            rows.replace("finished_at FROM", "finished_at IS NOT NULL FROM"), args
        )
        found = list(zip(*tuples.fetchall()))
        return list(found[0]), list(found[1]), bytes(found[2])


_SEPARATOR = "\x1f"  # char(31), the unit separator
_FLAGS = bytes.maketrans(b"01", b"\x00\x01")
