"""The commands that look at or act on one store: ``status``, ``cancel``, ``decide`` and
``explain``; and ``lab``.

``status`` reads only the columns it shows and, by default, only the most recent rows (with a
count by status of all of them), so it answers at once on a store of 100,000 missions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import progress as pg
from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CommandError,
    open_store,
    resolve_mission_id,
    store_location,
)
from .terminal import Console, escape_control

if TYPE_CHECKING:
    from ..runtime.store import MissionStore
    from ..runtime.store_row import MissionRow

#: Rows ``status`` prints without ``--all``.
DEFAULT_STATUS_ROWS = 20
#: The columns a status line needs (``mission_view`` reads these from a row).
STATUS_VIEW_COLUMNS = (
    "id",
    "goal",
    "status",
    "n_steps",
    "n_done",
    "n_failed",
    "progress",
    "started_at",
    "finished_at",
    "error",
    "stall_reason",
    "backend",
    "pid",
    "pid_started",
)
#: SIGTERM -> SIGKILL grace when cancelling a worker.
CANCEL_GRACE_SECS = 3.0


# -- status ---------------------------------------------------------------------------------


def status_counts(store: MissionStore) -> dict[str, int]:
    """Missions by status over the whole store, counted by SQLite (no row reaches Python)."""
    grouped: list[Any] = store.rows(("status", "COUNT(*) AS n"), where="GROUP BY status")
    counts = {row["status"]: int(row["n"]) for row in grouped}
    order = list(pg.BAR_STYLES)
    return dict(sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99))


def recent_rows(store: MissionStore, limit: int | None) -> list[MissionRow]:
    """The ``limit`` most recently submitted missions (all with None), oldest first, with
    only the columns a status line shows."""
    if limit is None:
        return store.rows(STATUS_VIEW_COLUMNS)
    return store.rows(
        STATUS_VIEW_COLUMNS,
        where="WHERE rowid IN (SELECT rowid FROM missions ORDER BY rowid DESC LIMIT ?)",
        args=(limit,),
    )


def row_view(row: MissionRow, now: float) -> pg.MissionView:
    """The view of one status line; an unfinished mission whose worker is gone says so."""
    from ..runtime.processes import process_alive

    view = pg.mission_view(row, now)
    gone = (
        row["finished_at"] is None
        and row["pid"] is not None
        and row["backend"] == "subprocess"
        and not process_alive(row["pid"], row["pid_started"])
    )
    if gone:
        view = view._replace(
            stall_reason=f"worker pid {row['pid']} is not running (it ended without a "
            "final event; an orchestrator on this store will record it as failed)"
        )
    return view


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.store, "status")
    counts = status_counts(store)
    total = sum(counts.values())
    console.print(f"Store: {store.root} ({total} missions: {pg.format_counts(counts)})")
    rows = recent_rows(store, None if args.all else args.limit)
    now = time.time()
    views = [row_view(row, now) for row in rows]
    if views:
        for line in console.table(views):
            console.print(line)
    if len(views) < total:
        console.print(
            f"(the {len(views)} most recent of {total} missions, newest last; "
            f"--all shows all, -n N the last N)"
        )
    return EXIT_OK


# -- cancel ---------------------------------------------------------------------------------


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    from ..runtime.processes import kill_process_tree, owner_alive, process_alive

    store = open_store(args.store, "cancel")
    row = resolve_mission_id(store, args.id, "cancel")
    mission_id = row["id"]
    if row.get("finished_at") is not None:
        raise CommandError(
            f"{PROG} cancel: mission {mission_id} already finished ({row['status']}); "
            "nothing to cancel"
        )
    backend = row.get("backend") or "subprocess"
    if row.get("pid") is None and row.get("started_at") is None:
        if owner_alive(row.get("owner")):
            owner_pid = str(row.get("owner")).partition(":")[0]
            raise CommandError(
                f"{PROG} cancel: mission {mission_id} is queued by process {owner_pid}, which "
                f"is still running; cancel it there with orch.cancel({mission_id!r})"
            )
        store.finish_if_unfinished(mission_id, "cancelled", "cancelled from the command line")
        console.print(f"Cancelled mission {mission_id} (it was queued and had not started).")
        return EXIT_OK
    if backend != "subprocess":
        raise CommandError(
            f"{PROG} cancel: mission {mission_id} runs on the {backend!r} backend inside "
            f"process {row.get('pid')}; only that process can stop it: "
            f"orch.cancel({mission_id!r})"
        )
    pid, started = row["pid"], row["pid_started"]
    # The end is recorded first: stopping the worker first would let its owner see a dead
    # worker and record "failed" before this cancel is written.
    event = store.finish_if_unfinished(mission_id, "cancelled", "cancelled from the command line")
    if event is None:
        final = store.row(mission_id)
        raise CommandError(
            f"{PROG} cancel: mission {mission_id} finished ({final and final['status']}) before it "
            "could be cancelled"
        )
    was_alive = pid is not None and process_alive(pid, started)
    if pid is not None and was_alive:
        kill_process_tree(pid, started, CANCEL_GRACE_SECS)
    how = f"worker pid {pid} stopped" if was_alive else f"its worker pid {pid} was already gone"
    console.print(f"Cancelled mission {mission_id} ({how}).")
    return EXIT_OK


# -- decide / explain ------------------------------------------------------------------------


def cmd_decide(args: argparse.Namespace, console: Console) -> int:
    from ..core.errors import MissionError
    from ..deciding import decide_in_store

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
    from ..deciding import explain_in_store

    store = open_store(args.store, "explain")
    mission_id = resolve_mission_id(store, args.id, "explain")["id"]
    try:
        text = explain_in_store(store, mission_id, model=args.model)
    except MissionError as exc:
        raise CommandError(f"{PROG} explain: {exc}") from None
    console.print(escape_control(text))
    return EXIT_OK


# -- lab ------------------------------------------------------------------------------------


def quickstart_notebook() -> Path:
    return Path(__file__).resolve().parents[2] / "notebooks" / "01-quickstart.ipynb"


def _names_a_path(arg: str) -> bool:
    """Whether a Jupyter argument names something to open (not an option or its value)."""
    return not arg.startswith("-") and (arg.endswith(".ipynb") or os.path.exists(arg))


def lab_command(
    jupyter_args: list[str], *, notebook: Path | None, port: int | None, is_root: bool
) -> tuple[list[str], Path | None]:
    """The ``jupyter lab`` command line and its working directory: the quickstart notebook
    (opened from its own folder) unless the user names something to open, the user's
    arguments passed on as given, and ``--allow-root`` when running as root (Jupyter refuses
    root otherwise) unless the user already said either way."""
    command = [sys.executable, "-m", "jupyter", "lab"]
    cwd = None
    if notebook is not None and not any(_names_a_path(a) for a in jupyter_args):
        command.append(notebook.name)
        cwd = notebook.parent
    if port is not None:
        command.append(f"--port={port}")
    command += jupyter_args
    root_flags = ("--allow-root", "--no-allow-root", "--ServerApp.allow_root")
    if is_root and not any(a.split("=")[0] in root_flags for a in jupyter_args):
        command.append("--allow-root")
    return command, cwd


def cmd_lab(args: argparse.Namespace, console: Console) -> int:
    import importlib.util
    import subprocess

    if importlib.util.find_spec("jupyterlab") is None:
        raise CommandError(
            f"{PROG} lab: JupyterLab is not installed in {sys.prefix}; install it with "
            f"`{sys.executable} -m pip install jupyterlab` (or `pip install -e '.[dev]'`)"
        )
    env = dict(os.environ)
    if args.store is not None:
        env["MISSION_WIDGETS_STORE"] = str(store_location(args.store, "lab").resolve())
    notebook: Path | None = quickstart_notebook()
    if notebook is not None and not notebook.is_file():
        console.print(
            f"note: the quickstart notebook is not at {notebook} (it ships with the source "
            "repository); opening JupyterLab in the current directory."
        )
        notebook = None
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    command, cwd = lab_command(
        args.jupyter_args, notebook=notebook, port=args.port, is_root=is_root
    )
    console.print("Starting: " + escape_control(" ".join(command)))
    try:
        return subprocess.call(command, cwd=cwd, env=env)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as exc:
        raise CommandError(f"{PROG} lab: could not start JupyterLab: {exc}", EXIT_USAGE) from None
