"""The commands that look at or act on one store: ``status``, ``cancel``, ``decide`` and
``explain`` (``lab`` is in :mod:`.lab`).

``status`` reads only the columns it shows and, by default, only the most recent rows (with a
count by status of all of them), so it answers at once on a store of 100,000 missions.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core import progress as pg
from ..runtime.store_base import STATUS_COLUMNS
from .common import (
    EXIT_OK,
    PROG,
    CommandError,
    open_store,
    resolve_mission_id,
)
from .terminal import Console, escape_control

if TYPE_CHECKING:
    from ..runtime.backend import Backend
    from ..runtime.store import MissionStore
    from ..runtime.store_row import MissionRow

#: Rows ``status`` prints without ``--all``.
DEFAULT_STATUS_ROWS = 20
#: The columns a status line reads: those of ``status()`` (one list, the store's), and the
#: process start time that tells a live worker from a reused pid.
STATUS_VIEW_COLUMNS = (*STATUS_COLUMNS, "pid_started")
#: SIGTERM -> SIGKILL grace when cancelling a worker.
CANCEL_GRACE_SECS = 3.0
#: How long ``cancel`` waits, by default, for another process to honour its request.
CANCEL_WAIT_SECS = 10.0


# -- status ---------------------------------------------------------------------------------


def status_counts(store: MissionStore) -> dict[str, int]:
    """Missions by status over the whole store, counted by SQLite (no row reaches Python)."""
    grouped: list[Any] = store.rows(("status", "COUNT(*) AS n"), where="GROUP BY status")
    counts = {row["status"]: int(row["n"]) for row in grouped}
    order = list(pg.BAR_STYLES)
    return dict(sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))


def cost_line(store: MissionStore) -> str:
    """``Cost: $0.0123 in total`` over the whole store, summed by SQLite; missions whose
    cost is unknown (a model without a price) are counted, never summed as 0."""
    from ..core.cost import format_usd

    row: Any = store.rows(("TOTAL(cost_usd) AS usd", "SUM(cost_usd IS NULL) AS unknown"), where="")[
        0
    ]
    line = f"Cost: {format_usd(row['usd'])} in total"
    unknown = int(row["unknown"] or 0)
    if unknown:
        line += (
            f", plus {unknown} mission{'s' if unknown != 1 else ''} of unknown cost "
            "(a model without a price: register_price(model, input_per_mtok=..., "
            "output_per_mtok=...))"
        )
    return line


def recent_rows(
    store: MissionStore, limit: int | None, statuses: Sequence[str] | None = None
) -> list[MissionRow]:
    """The ``limit`` most recently submitted missions (all with None), oldest first, with
    only the columns a status line shows; only those in ``statuses`` when given."""
    where, args = "", tuple[str, ...]()
    if statuses:
        marks = ",".join("?" * len(statuses))
        where, args = f"WHERE status IN ({marks})", tuple(statuses)
    if limit is None:
        return store.rows(STATUS_VIEW_COLUMNS, where=where, args=args)
    return store.rows(
        STATUS_VIEW_COLUMNS,
        where=f"WHERE rowid IN (SELECT rowid FROM missions {where} ORDER BY rowid DESC LIMIT ?)",
        args=(*args, limit),
    )


class RowViews:
    """Status lines of store rows; an unfinished mission whose executor is gone says so
    (asked of the row's backend, one observer per backend name)."""

    def __init__(self, store: MissionStore, now: float) -> None:
        self.store = store
        self.now = now
        self.backends: dict[str | None, Backend] = {}

    def __call__(self, row: MissionRow) -> pg.MissionView:
        from ..runtime.registry import backend_for_row

        view = pg.mission_view(row, self.now)
        if row["finished_at"] is None and row["pid"] is not None:
            name = row["backend"]
            if name not in self.backends:
                self.backends[name] = backend_for_row(row, self.store)
            backend = self.backends[name]
            if backend.is_alive(row) is False:
                view = view._replace(
                    stall_reason=f"{backend.exit_reason(row)}; an orchestrator on this store "
                    "will record it as failed"
                )
        return view


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.store, "status")
    counts = status_counts(store)
    total = sum(counts.values())
    console.print(f"Store: {store.root} ({total} missions: {pg.format_counts(counts)})")
    console.print(cost_line(store))
    statuses = getattr(args, "statuses", None)
    rows = recent_rows(store, None if args.all else args.limit, statuses)
    views = list(map(RowViews(store, time.time()), rows))
    if views:
        for line in console.table(views):
            console.print(line)
    # With --status, "of how many" counts the missions in those statuses, not the store.
    matching = sum(counts.get(s, 0) for s in set(statuses)) if statuses else total
    if len(views) < matching:
        which = f" {'/'.join(statuses)}" if statuses else ""
        console.print(
            f"(the {len(views)} most recent of {matching}{which} missions, newest last; "
            f"--all shows all, -n N the last N)"
        )
    return EXIT_OK


# -- cancel ---------------------------------------------------------------------------------


def _owner_pid(owner: str | None) -> str:
    return str(owner or "?").partition(":")[0]


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    """Cancel from any process: a running worker is stopped here; a queued mission (or one
    that runs inside another process, on a thread) is asked of its owner through the store,
    and the command waits up to ``--wait`` seconds to see it honoured."""
    from ..orchestrator.cancellation import ENDED, REQUESTED, cancel_in_store

    store = open_store(args.store, "cancel")
    row = resolve_mission_id(store, args.id, "cancel")
    mission_id = row["id"]
    if row["finished_at"] is not None:
        raise CommandError(
            f"{PROG} cancel: mission {mission_id} already finished ({row['status']}); "
            "nothing to cancel"
        )
    reason = f"cancelled from the command line (pid {os.getpid()})"
    outcome = cancel_in_store(store, mission_id, reason=reason, grace=CANCEL_GRACE_SECS)
    if outcome is None:
        final = store.row(mission_id)
        raise CommandError(
            f"{PROG} cancel: mission {mission_id} finished "
            f"({final and final['status']}) before it could be cancelled"
        )
    if outcome == ENDED:
        console.print(
            f"Cancelled mission {mission_id} (it was queued and had not started; the process "
            f"that queued it, {_owner_pid(row['owner'])}, is gone)."
        )
        return EXIT_OK
    if outcome == REQUESTED:
        owner = _owner_pid(row["owner"]) if row["pid"] is None else row["pid"]
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            now = store.row(mission_id)
            if now is None or now["finished_at"] is not None:
                status = now["status"] if now else "forgotten"
                if status not in ("cancelled", "forgotten"):
                    raise CommandError(
                        f"{PROG} cancel: mission {mission_id} ended {status} before process "
                        f"{owner}, which runs it, cancelled it; nothing was cancelled"
                    )
                console.print(
                    f"Cancelled mission {mission_id}: process {owner}, which runs it, honoured "
                    f"the request ({status})."
                )
                return EXIT_OK
            time.sleep(0.1)
        raise CommandError(
            f"{PROG} cancel: asked process {owner}, which has mission {mission_id}, to cancel "
            f"it; it has not yet after {args.wait:g} s (the request stays in the store and "
            "is honoured when that process next refreshes)"
        )
    console.print(f"Cancelled mission {mission_id} (worker pid {row['pid']} stopped).")
    return EXIT_OK


# -- decide / explain ------------------------------------------------------------------------


def cmd_decide(args: argparse.Namespace, console: Console) -> int:
    from ..core.errors import MissionError
    from ..orchestrator.deciding import decide_in_store

    store = open_store(args.store, "decide")
    mission_id = resolve_mission_id(store, args.id, "decide")["id"]
    try:
        step_id = decide_in_store(store, mission_id, args.action)
    except MissionError as exc:
        raise CommandError(f"{PROG} decide: {exc}") from None
    console.print(
        f"Decided {args.action!r} for step {step_id!r} of mission {mission_id}; its worker "
        "takes the answer within a second."
    )
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, console: Console) -> int:
    from ..core.errors import MissionError
    from ..orchestrator.deciding import explain_in_store

    store = open_store(args.store, "explain")
    mission_id = resolve_mission_id(store, args.id, "explain")["id"]
    try:
        text = explain_in_store(store, mission_id, model=args.model)
    except MissionError as exc:
        raise CommandError(f"{PROG} explain: {exc}") from None
    console.print(escape_control(text))
    return EXIT_OK
