"""Shared budgets on a Dask cluster: the ledger of ``MissionOrchestrator(budget=...,
backend="dask")``, kept on the scheduler.

Dask workers share no disk with the kernel, so the store cannot be the ledger; the
scheduler is what every worker reaches. Each change is one ``Client.run_on_scheduler`` of
:func:`_apply`: a plain (not async) function runs on the scheduler's event loop, one call at
a time, so reserving is atomic across workers. The state lives in this module's
:data:`_LEDGERS` in the scheduler's process, so it lasts as long as the scheduler.
A mission's child process (``isolation="process"``) has no client: it opens one to the
scheduler the first time its mission asks the ledger (only missions with an orchestrator
budget pay for importing distributed there). Nothing here imports dask at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.budget import SharedLedger

#: Budget id -> ledger state (see core.budget.new_ledger), in the scheduler's process.
_LEDGERS: dict[str, dict[str, Any]] = {}


def _apply(budget_id: str, fn: Callable[..., Any] | None, *args: Any) -> Any:
    """On the scheduler: ``fn(state, *args)``, or the state when ``fn`` is None."""
    state = _LEDGERS.get(budget_id)
    if state is None:
        raise KeyError(f"no budget {budget_id!r} on this Dask scheduler (was it restarted?)")
    if fn is None:
        return dict(state)
    return fn(state, *args)


def _create(budget_id: str, state: dict[str, Any]) -> None:
    _LEDGERS[budget_id] = state


class DaskLedger(SharedLedger):
    """An orchestrator's budget kept on its Dask scheduler."""

    def __init__(self, client: Any, budget_id: str, state: dict[str, Any]) -> None:
        self.address = client.scheduler.address
        self.budget_id = budget_id
        self.__dict__["_client"] = client
        client.run_on_scheduler(_create, budget_id, state)

    def _client_here(self) -> Any:
        client = self.__dict__.get("_client")
        if client is None:
            import distributed

            try:
                client = distributed.get_client()  # in a Dask task (isolation="thread")
            except ValueError:  # a mission's child process: no worker, no client
                client = distributed.Client(self.address, set_as_default=False)
            self.__dict__["_client"] = client
        return client

    def _update(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._client_here().run_on_scheduler(_apply, self.budget_id, fn, *args)

    def read(self) -> dict[str, Any]:
        return dict(self._update(None))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"DaskLedger({self.address!r}, {self.budget_id!r})"
