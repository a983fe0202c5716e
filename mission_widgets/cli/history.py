"""Commands that keep a store's history in order: ``prune`` (forget finished missions by
age, status or id) and ``store check`` / ``store repair`` (find and mend damage)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..core.status import TERMINAL_STATUSES, MissionStatus
from .common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CommandError,
    open_store,
    resolve_mission_id,
    store_location,
)
from .terminal import Console, escape_control

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
#: Statuses a finished mission can have (what ``prune --status`` accepts), in lifecycle order.
FINISHED_STATUSES = tuple(s.value for s in MissionStatus if s.value in TERMINAL_STATUSES)


def parse_duration(text: str) -> float:
    """``'7d'`` -> seconds: a number with an optional unit s, m, h, d or w (seconds without)."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 30s, 15m, 12h, 7d or 2w, got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_statuses(text: str) -> list[str]:
    """``'failed,cancelled'`` -> the statuses, each one a finished mission can have."""
    chosen = [part.strip().lower() for part in text.split(",") if part.strip()]
    wrong = [s for s in chosen if s not in FINISHED_STATUSES]
    if wrong or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown finished status {', '.join(map(repr, wrong)) or repr(text)}; "
            f"choose from {', '.join(FINISHED_STATUSES)}"
        )
    return chosen


# -- prune ----------------------------------------------------------------------------------


def cmd_prune(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.store, "prune")
    statuses = None if args.status is None else sorted({s for group in args.status for s in group})
    ids = None
    if args.id:
        ids = [resolve_mission_id(store, text, "prune")["id"] for text in args.id]
    removed = store.prune(older_than_secs=args.older_than, statuses=statuses, ids=ids)
    kept = [i for i in ids or [] if i not in removed]
    if removed:
        console.print(f"Removed {len(removed)} finished missions from {store.root}:")
        for mission_id in removed:
            console.print(f"  {mission_id}")
    else:
        console.print(f"Nothing to prune in {store.root}: no finished mission matched.")
    if kept:
        rows = store.rows_by_id(kept)
        reasons = [f"{i} ({rows[i]['status']})" for i in kept if i in rows]
        raise CommandError(
            f"{PROG} prune: not removed, not finished: {', '.join(reasons)} (cancel them first)"
        )
    return EXIT_OK


# -- store check / repair ---------------------------------------------------------------------


def _print_list(console: Console, title: str, items: list[Any], limit: int = 20) -> None:
    if not items:
        return
    console.print(f"{title} ({len(items)}):")
    for item in items[:limit]:
        console.print(f"  {escape_control(item)}")
    if len(items) > limit:
        console.print(f"  ... and {len(items) - limit} more")


def cmd_store(args: argparse.Namespace, console: Console) -> int:
    from ..runtime.store import StoreError, check_store, repair_store

    command = f"store {args.action}"
    where = store_location(args.store, command)
    try:
        report = check_store(where) if args.action == "check" else repair_store(where)
    except (StoreError, OSError) as exc:
        raise CommandError(f"{PROG} {command}: {escape_control(exc)}", EXIT_USAGE) from None
    console.print(f"Store: {report['path']}")
    if args.action == "check":
        console.print(f"Database: {escape_control(report['integrity'])}")
        console.print(f"Store format: {escape_control(report['store_format'])}")
        _print_list(console, "Files no mission row refers to", report["orphan_files"])
        _print_list(console, "Missions with no file", report["rows_without_files"])
        _print_list(console, "Problems", report["problems"])
        if report["ok"]:
            console.print("OK: the database is intact and every file belongs to a mission.")
            return EXIT_OK
        console.print(f"DAMAGED: see above; `{PROG} store repair --store {where}` rebuilds it.")
        return EXIT_FAIL
    console.print(f"Database before: {escape_control(report['integrity_before'])}")
    _print_list(console, "Damaged database moved aside to", report["moved_aside"])
    console.print(
        f"Rebuilt {len(report['rows_rebuilt'])} missions "
        f"({report['events_rebuilt']} events) from their files."
    )
    _print_list(console, "Missions rebuilt", report["rows_rebuilt"])
    _print_list(console, "Problems", report["problems"])
    return EXIT_FAIL if report["problems"] else EXIT_OK


def add_history_parsers(sub: Any, store_help: str) -> None:
    """The ``prune`` and ``store`` subcommands' arguments."""
    prune = sub.add_parser(
        "prune",
        help="forget finished missions (rows, events, logs, checkpoints)",
        description="Remove finished missions from a store: their rows, events, logs, "
        "checkpoints and files. Filters combine (all must match); with none, every finished "
        "mission goes. Queued and running missions are never removed.",
    )
    prune.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="AGE",
        help="only missions that finished more than AGE ago (30s, 15m, 12h, 7d, 2w)",
    )
    prune.add_argument(
        "--status",
        type=parse_statuses,
        action="append",
        metavar="S[,S...]",
        help=f"only missions that ended so ({', '.join(FINISHED_STATUSES)}); repeatable",
    )
    prune.add_argument(
        "--id",
        action="append",
        metavar="ID",
        help="only this mission (full or short id); repeatable",
    )
    prune.add_argument("--store", metavar="DIR", help=store_help)

    store = sub.add_parser(
        "store",
        help="check a store for damage, or repair it",
        description="check: SQLite's integrity check, files no mission refers to, missions "
        "with no file (changes nothing; exit 1 when damaged). repair: move a damaged "
        "database aside (never deleted) and rebuild missions from their checkpoints, "
        "mission files and logs.",
    )
    store.add_argument("action", choices=("check", "repair"), help="what to do")
    store.add_argument("--store", metavar="DIR", help=store_help)
