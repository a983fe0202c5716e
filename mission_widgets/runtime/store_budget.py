"""Shared budgets in the store: the ledger of ``MissionOrchestrator(budget=...)``.

One ``budgets`` row per orchestrator budget (id, the owner that made it, its JSON state:
limits, usage, calls under way; see :func:`mission_widgets.core.budget.new_ledger`). Every
change is one ``BEGIN IMMEDIATE`` transaction that reads the state, applies a ledger function
and writes it back, so workers in many processes reserve against one budget atomically.
:class:`.store_ledger.StoreLedger` is what travels to a worker with its mission. Standard
library only: the worker imports this module.
"""

from __future__ import annotations

import json
import sqlite3
import time

from .store_base import guarded

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Any


class StoreBudgets:
    """Mixed into MissionStore (which provides the connection and its write transaction)."""

    if TYPE_CHECKING:

        def _connect(self) -> sqlite3.Connection: ...

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

    @guarded
    def create_budget(self, budget_id: str, owner: str | None, state: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO budgets (id, owner, created_at, state_json) VALUES (?, ?, ?, ?)",
                (budget_id, owner, time.time(), json.dumps(state)),
            )

    @guarded
    def update_budget(self, budget_id: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(state, *args)`` on the budget's state under the write lock; its result."""
        with self._write() as conn:
            row = conn.execute("SELECT state_json FROM budgets WHERE id=?", (budget_id,)).fetchone()
            if row is None:
                raise KeyError(f"no budget {budget_id!r} in this store")
            state = json.loads(row[0])
            result = fn(state, *args)
            conn.execute(
                "UPDATE budgets SET state_json=? WHERE id=?", (json.dumps(state), budget_id)
            )
            return result

    @guarded
    def budget_state(self, budget_id: str) -> dict[str, Any] | None:
        row = (
            self._connect()
            .execute("SELECT state_json FROM budgets WHERE id=?", (budget_id,))
            .fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))
