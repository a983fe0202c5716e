"""The ledger of an orchestrator's budget in a store (subprocess and thread backends).

What travels to a worker with its mission: the store's path and the budget's id only; the
worker opens the store the first time its mission asks (see :mod:`.store_budget` for the
table and its transactions). Standard library only: the worker imports this module.
"""

from __future__ import annotations

from ..core.budget import SharedLedger
from .store import MissionStore

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class StoreLedger(SharedLedger):
    """An orchestrator's budget kept in a store's ``budgets`` table (subprocess and thread
    backends: every worker reaches the store)."""

    def __init__(self, root: str, budget_id: str) -> None:
        self.root = root
        self.budget_id = budget_id

    def _store(self) -> MissionStore:
        store: MissionStore | None = self.__dict__.get("_opened")
        if store is None:
            store = self.__dict__["_opened"] = MissionStore(self.root, create=False, role="worker")
        return store

    def _update(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._store().update_budget(self.budget_id, fn, *args)

    def read(self) -> dict[str, Any]:
        state = self._store().budget_state(self.budget_id)
        if state is None:
            raise KeyError(f"no budget {self.budget_id!r} in the store {self.root}")
        return state

    def __repr__(self) -> str:
        return f"StoreLedger({self.root!r}, {self.budget_id!r})"
