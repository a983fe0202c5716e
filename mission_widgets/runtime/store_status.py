"""The reads behind ``status()`` and attach: parts of MissionStore, each costing in
proportion to what it returns.

Every row carries ``row_version``, the store's change counter when the row last changed
(store_base's triggers keep both for any writer), so ``status_records(changed_since=v)``
reads only the rows changed since ``v`` through an index, and ``change_versions()`` says in
constant time whether anything changed or was removed. ``attach_index`` is the one scan an
attaching orchestrator makes, as tuples.
"""

from __future__ import annotations

from .store_base import QUEUED, STATUS_COLUMNS, guarded

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
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
    def attach_index(self) -> list[tuple[str, str, bool, bool, str | None]]:
        """``(id, status, finished, queued, owner)`` of every row in submission order, as
        tuples (attach: a dict per row was most of attaching to 100,000 missions)."""
        cur = self._connect().execute(
            f"SELECT id, status, finished_at IS NOT NULL, {QUEUED}, owner FROM missions"
            " ORDER BY submitted_at, id"
        )
        return cur.fetchall()
