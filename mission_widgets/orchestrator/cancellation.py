"""Cancel any mission of a store from any process: ``orch.cancel()`` for missions it does not
run itself and the CLI's ``cancel`` share :func:`cancel_in_store`.

A queued mission of a live owner is not ours to end: a ``cancel`` request goes into the
store and its owner's watcher honours it (ends it before it starts). A queued mission of a
dead owner is ended here. A running one is stopped here when its backend can stop it from
this process (a worker process), else requested from the process that runs it (a thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..runtime.processes import owner_alive
from ..runtime.registry import backend_for_row

if TYPE_CHECKING:
    from ..runtime.backend import Backend, Row
    from ..runtime.store import MissionStore

#: What cancel_in_store did.
ENDED, STOPPED, REQUESTED = "ended", "stopped", "requested"


def is_queued(row: Row) -> bool:
    """Queued and never handed to a backend (no pid, never started)."""
    return (
        row["status"] == "pending"
        and row["pid"] is None
        and row["started_at"] is None
        and row["finished_at"] is None
    )


def can_cancel(row: Row, store: MissionStore, current: Backend | None = None) -> bool:
    """Whether :func:`cancel_in_store` can still stop this mission from this process: it has
    not ended, and it is queued, or its backend can stop it from here, or the process that
    owns it is alive to honour a cancel request (a thread of another live kernel)."""
    if row["finished_at"] is not None:
        return False
    if is_queued(row):
        return True
    backend = backend_for_row(row, store, current)
    return backend.can_cancel_here(row) or owner_alive(row["owner"])


def cancel_in_store(
    store: MissionStore,
    mission_id: str,
    *,
    reason: str,
    grace: float,
    current: Backend | None = None,
) -> str | None:
    """Cancel mission ``mission_id`` of ``store``; None when it had already finished.

    Returns ``"ended"`` (it was queued by a process that is gone: ended here, nothing ran),
    ``"requested"`` (its owner, alive, ends it on its next refresh) or ``"stopped"`` (its
    end is recorded, then its worker stopped). KeyError for an unknown id.
    """
    row = store.row(mission_id)
    if row is None:
        raise KeyError(f"no mission {mission_id!r} in store {store.root}")
    if row["finished_at"] is not None:
        return None
    if is_queued(row):
        if owner_alive(row["owner"]):
            store.add_request(mission_id, "cancel", {"reason": reason})
            return REQUESTED
        return ENDED if store.finish_if_unfinished(mission_id, "cancelled", reason) else None
    backend = backend_for_row(row, store, current)
    if not backend.can_cancel_here(row):
        store.add_request(mission_id, "cancel", {"reason": reason})
        return REQUESTED
    # The end is recorded first: stopping the worker first would let its owner see a dead
    # worker and record "failed" before this cancel is written.
    if store.finish_if_unfinished(mission_id, "cancelled", reason) is None:
        return None
    backend.stop(row, grace)
    return STOPPED
