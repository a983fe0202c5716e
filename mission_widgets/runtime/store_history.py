"""Claims and requests between processes, and the end of a mission's history: parts of
MissionStore.

``claim``/``adopt`` make exactly one process start a queued row (or take over a queue).

``requests`` carries what one process asks of the process running a mission (cancel a
queued mission, a person's decision, an explanation); each request is taken exactly once.
``decisions`` holds the one answer to each question a waiting mission asked (claimed once:
of two racing answers exactly one is recorded; the other learns who answered what).
``prune``/``forget`` remove finished missions: rows, events, requests and files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from .store_base import QUEUED, guarded
from .store_location import SUBDIRS, SUFFIXES

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from contextlib import AbstractContextManager
    from typing import Any

REQUEST_KINDS = ("cancel", "decision", "explanation")


class StoreRequestsAndHistory:
    """Mixed into MissionStore (which provides the connection and the paths)."""

    _root: str

    if TYPE_CHECKING:

        def _connect(self) -> sqlite3.Connection: ...
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def path_of(self, kind: str, mission_id: str) -> str: ...

    # -- claims: one process starts a queued row ----------------------------------------------

    @guarded
    def claim(self, mission_id: str, owner: str) -> bool:
        """Claim a queued row for ``owner`` before launching it; False when another process
        claimed or started it first (or it is queued by another owner: adopt() it first)."""
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE missions SET claimed_by=?, claimed_at=? WHERE id=? AND {QUEUED}"
                " AND (owner IS NULL OR owner=?) AND (claimed_by IS NULL OR claimed_by=?)",
                (owner, time.time(), mission_id, owner, owner),
            )
            return cur.rowcount == 1

    @guarded
    def adopt(self, mission_id: str, new_owner: str, expected_owner: str | None) -> bool:
        """Compare-and-swap the owner of a queued, not yet launched row (a dead kernel's
        queue): True for exactly one of several processes racing to adopt it."""
        with self._write() as conn:
            cur = conn.execute(
                f"UPDATE missions SET owner=?, claimed_by=NULL, claimed_at=NULL WHERE id=?"
                f" AND {QUEUED} AND owner IS ? AND (claimed_by IS NULL OR claimed_by IS ?)",
                (new_owner, mission_id, expected_owner, expected_owner),
            )
            return cur.rowcount == 1

    # -- requests from other processes --------------------------------------------------------

    @guarded
    def add_request(self, mission_id: str, kind: str, payload: Any = None) -> int:
        """Ask whoever runs ``mission_id`` to act: kind "cancel", "decision" ({"action": ...})
        or "explanation" ({"text": ...}). Returns the request's id."""
        if kind not in REQUEST_KINDS:
            raise ValueError(f"request kind must be one of {REQUEST_KINDS}, got {kind!r}")
        try:
            text = None if payload is None else json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload of a {kind!r} request is not JSON: {exc}") from None
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO requests (mission_id, kind, payload, created_at) VALUES (?, ?, ?, ?)",
                (mission_id, kind, text, time.time()),
            )
            return int(cur.lastrowid or 0)

    @guarded
    def take_requests(
        self, mission_ids: Iterable[str] | None = None, kinds: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Take (and remove) the waiting requests for ``mission_ids`` of ``kinds``, oldest
        first; each request is taken by exactly one caller. Costs one read when none wait."""
        where, args = "", []
        for column, values in (("mission_id", mission_ids), ("kind", kinds)):
            if values is not None:
                chosen = list(values)
                if not chosen:
                    return []
                where += f" AND {column} IN ({', '.join('?' * len(chosen))})"
                args += chosen
        query = f"SELECT id, mission_id, kind, payload, created_at FROM requests WHERE 1{where}"
        if self._connect().execute(query + " LIMIT 1", args).fetchone() is None:
            return []
        with self._write() as conn:
            found = conn.execute(query + " ORDER BY id", args).fetchall()
            conn.executemany("DELETE FROM requests WHERE id=?", [(r[0],) for r in found])
        return [
            {
                "id": rid,
                "mission_id": mid,
                "kind": kind,
                "payload": None if payload is None else json.loads(payload),
                "created_at": created,
            }
            for rid, mid, kind, payload, created in found
        ]

    @guarded
    def claim_decision(
        self,
        mission_id: str,
        question: str,
        *,
        step_id: str | None,
        action: str,
        decided_by: str,
        request: Any = None,
    ) -> dict[str, Any] | None:
        """Record ``action`` as the one answer to ``question`` of ``mission_id`` and, in the
        same transaction, add ``request`` (a "decision" request's payload) for the worker.
        Returns None when this call's answer won, else the answer recorded first (dict with
        ``action``, ``decided_by``, ``decided_at``, ``step_id``); nothing is written then."""
        with self._write() as conn:
            first = _decision(conn, mission_id, question)
            if first is not None:
                return first
            now = time.time()
            conn.execute(
                "INSERT INTO decisions (mission_id, question, step_id, action, decided_by,"
                " decided_at) VALUES (?, ?, ?, ?, ?, ?)",
                (mission_id, question, step_id, action, decided_by, now),
            )
            if request is not None:
                conn.execute(
                    "INSERT INTO requests (mission_id, kind, payload, created_at)"
                    " VALUES (?, 'decision', ?, ?)",
                    (mission_id, json.dumps(request), now),
                )
        return None

    @guarded
    def decision_of(self, mission_id: str, question: str) -> dict[str, Any] | None:
        """The answer recorded for ``question`` of ``mission_id``, else None."""
        return _decision(self._connect(), mission_id, question)

    @guarded
    def status_counts(self) -> dict[str, int]:
        """How many rows have each status (one grouped read)."""
        rows = self._connect().execute("SELECT status, COUNT(*) FROM missions GROUP BY status")
        return {str(status): int(n) for status, n in rows}

    # -- history ------------------------------------------------------------------------------

    @guarded
    def unregister(self, mission_id: str) -> None:
        """Remove a mission that never started (a submit whose files could not be written):
        its row, events, requests and files, as if it had never been submitted."""
        with self._write() as conn:
            self._delete_missions(conn, [mission_id])
        self._remove_files(mission_id)

    @staticmethod
    def _delete_missions(conn: sqlite3.Connection, ids: list[str]) -> None:
        keys = [(mid,) for mid in ids]
        for table, column in (
            ("events", "mission_id"),
            ("requests", "mission_id"),
            ("decisions", "mission_id"),
            ("mission_states", "id"),
            ("missions", "id"),
        ):
            conn.executemany(f"DELETE FROM {table} WHERE {column}=?", keys)

    def forget(self, ids: Iterable[str]) -> list[str]:
        """Remove the finished missions among ``ids`` (rows, events, files); the ids removed."""
        return self.prune(ids=list(ids))

    @guarded
    def prune(
        self,
        older_than_secs: float | None = None,
        statuses: Iterable[str] | None = None,
        ids: Iterable[str] | None = None,
    ) -> list[str]:
        """Remove finished missions finished more than ``older_than_secs`` ago, of
        ``statuses``, among ``ids`` (each filter optional): rows, events, requests, mission,
        log, checkpoint and large-value files. Unfinished missions are never removed."""
        where = "finished_at IS NOT NULL"
        args: list[Any] = []
        if older_than_secs is not None:
            where += " AND finished_at < ?"
            args.append(time.time() - float(older_than_secs))
        for column, values in (("status", statuses), ("id", ids)):
            if values is not None:
                chosen = [str(v) for v in values]
                if not chosen:
                    return []
                where += f" AND {column} IN ({', '.join('?' * len(chosen))})"
                args += chosen
        with self._write() as conn:
            removed = [
                mid for (mid,) in conn.execute(f"SELECT id FROM missions WHERE {where}", args)
            ]
            self._delete_missions(conn, removed)
        for mission_id in removed:
            self._remove_files(mission_id)
        return removed

    def _remove_files(self, mission_id: str) -> None:
        import shutil

        for kind in SUBDIRS:
            with _ignore_missing():
                os.unlink(self.path_of(kind, mission_id))
        folder = os.path.join(self._root, SUBDIRS["checkpoint"])
        checkpoint = f"{mission_id}{SUFFIXES['checkpoint']}."
        for entry in os.scandir(folder):
            if entry.name.startswith(checkpoint) and entry.is_file():
                with _ignore_missing():
                    os.unlink(entry.path)
            elif entry.name in (mission_id, f"{mission_id}.large") and entry.is_dir():
                shutil.rmtree(entry.path, ignore_errors=True)


_DECISION_FIELDS = ("action", "decided_by", "decided_at", "step_id")


def _decision(conn: sqlite3.Connection, mission_id: str, question: str) -> dict[str, Any] | None:
    found = conn.execute(
        f"SELECT {', '.join(_DECISION_FIELDS)} FROM decisions WHERE mission_id=? AND question=?",
        (mission_id, question),
    ).fetchone()
    return None if found is None else dict(zip(_DECISION_FIELDS, found))


@contextmanager
def _ignore_missing() -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        pass
