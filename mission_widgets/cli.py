"""The ``mission-widgets`` command: ``demo``, ``status``, ``cancel`` and ``lab``.

``mission-widgets demo`` is the README's first command on a fresh machine: it runs a few
missions with the offline demo model in worker processes and draws their progress live in
the terminal (a table redrawn in place on a TTY, one line per change otherwise). Rendering
is done by the pure functions of :mod:`mission_widgets.core.progress`; this module only
decides what to draw when, and talks to the orchestrator and the store.

Exit codes: 0 success; 1 the command ran but could not do what was asked (unknown or
finished mission, unexpected demo outcome); 2 usage errors and a missing store; 130
interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import __version__
from .core import progress as pg

if TYPE_CHECKING:
    from .core.mission import Mission
    from .orchestrator import MissionOrchestrator
    from .runtime.store import MissionStore

PROG = "mission-widgets"

#: Tutorial-like goals of ``demo``; the fifth fails on purpose so ``-n 5`` shows a failure.
DEMO_GOALS = (
    "Summarise the history of the printing press",
    "Plan a three-day trip to Lisbon",
    "Explain photosynthesis to a ten-year-old",
    "Compare bubble sort, merge sort and quicksort",
    "Draft a quiz on fractions [fail]",
    "Write a README for a weather app",
    "Outline a talk on weather models [slow]",
    "Design a reading list on Roman history",
)
#: The extra mission of ``demo --stall``: its tool never returns, so it stops making progress.
HANG_GOAL = "Wait for a reply that never comes [hang]"
DEMO_MODELS = ("demo", "demo:fast", "demo:slow")

#: Seconds between redraws of the live table (and polls of the store).
REFRESH_SECS = 0.2
#: In plain (non-TTY) mode, a summary line at least this often even when nothing changed.
PLAIN_HEARTBEAT_SECS = 10.0
#: How long a stalled mission stays visible as ``stalled`` before the demo cancels it.
STALL_SHOW_SECS = 1.5
#: SIGTERM -> SIGKILL grace when cancelling a worker.
CANCEL_GRACE_SECS = 3.0

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """A clear, user-facing failure of a command: message and exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


# -- terminal helpers -----------------------------------------------------------------------


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Console:
    """What the output stream can do: live redraw, colour, Unicode, width."""

    def __init__(self, stream: TextIO, *, live: bool = True) -> None:
        self.stream = stream
        tty = _isatty(stream) and os.environ.get("TERM", "") != "dumb"
        self.live = live and tty
        self.color = tty and not os.environ.get("NO_COLOR")
        self.ascii = not (tty and _can_encode(stream, "\u2588\u258f\u2713\u2717\u2514\u2026"))

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows): $COLUMNS/$LINES, else the terminal's, else 120x24."""
        cols, rows = shutil.get_terminal_size((120, 24))
        return max(cols, 20), max(rows, 5)

    @property
    def width(self) -> int:
        # One column spare: writing into the last column makes some terminals wrap.
        return self.size[0] - 1

    def styler(self) -> pg.Styler | None:
        if not self.color:
            return None

        return pg.ansi

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.color else text

    def print(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def table(self, views: Sequence[pg.MissionView], **options: Any) -> list[str]:
        return pg.format_table(
            views, width=self.width, ascii=self.ascii, styler=self.styler(), **options
        )


class LiveFrame:
    """A block of lines redrawn in place with ANSI escapes (TTY only)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.height = 0
        self.console.stream.write("\x1b[?25l")  # hide the cursor while drawing

    def draw(self, lines: Sequence[str]) -> None:
        out = []
        if self.height:
            out.append(f"\r\x1b[{self.height}A")
        for line in lines:
            out.append("\x1b[2K" + line + "\n")
        out.append("\x1b[J")  # erase what the previous, taller frame left below
        self.console.stream.write("".join(out))
        self.console.stream.flush()
        self.height = len(lines)

    def close(self, *, erase: bool) -> None:
        if erase and self.height:
            self.console.stream.write(f"\r\x1b[{self.height}A\x1b[J")
            self.height = 0
        self.console.stream.write("\x1b[?25h")
        self.console.stream.flush()


_PRIORITY = {"stalled": 0, "failed": 1, "running": 2, "planning": 2, "cancelled": 3}


def fit_views(
    views: Sequence[pg.MissionView], max_rows: int
) -> tuple[list[pg.MissionView], list[pg.MissionView]]:
    """Split ``views`` into those shown (at most ``max_rows``, in order; stalled, failed and
    running first) and those summarised, so a live frame never outgrows the screen."""
    if len(views) <= max_rows:
        return list(views), []
    max_rows = max(max_rows - 1, 0)  # one line for "... and N more"
    ranked = sorted(range(len(views)), key=lambda i: (_PRIORITY.get(views[i].status, 4), i))
    keep = set(ranked[:max_rows])
    shown = [v for i, v in enumerate(views) if i in keep]
    hidden = [v for i, v in enumerate(views) if i not in keep]
    return shown, hidden


# -- store helpers --------------------------------------------------------------------------


def open_store(path: str | None, command: str) -> MissionStore:
    """An existing store, read-only in spirit (``create=False``); exit 2 when it is missing."""
    from .runtime.store import MissionStore, StoreError, resolve_store_path

    where = resolve_store_path(path).expanduser()
    try:
        return MissionStore(path, create=False)
    except StoreError as exc:
        hint = (
            f"no mission store at {where} (no store.sqlite there). Check the path, or "
            f"create one with `{PROG} demo --store {where}` or "
            f"MissionOrchestrator(store={str(where)!r})."
        )
        if "not usable" in str(exc) or "cannot open" in str(exc):
            hint = str(exc)
        raise CommandError(f"{PROG} {command}: {hint}", EXIT_USAGE) from None


def _worker_gone(row: dict[str, Any]) -> bool:
    from .runtime.processes import process_alive

    if row.get("finished_at") is not None or row.get("pid") is None:
        return False
    return not process_alive(row["pid"], row.get("pid_started"))


def resolve_mission_id(store: MissionStore, text: str) -> dict[str, Any]:
    """The store row of mission ``text``: a full id, or a unique short id / prefix / suffix."""
    row = store.row(text)
    if row is not None:
        return row
    matches = [
        r
        for r in store.rows(("id",))
        if pg.short_id(r["id"]) == text or r["id"].endswith(text) or r["id"].startswith(text)
    ]
    if not matches:
        raise CommandError(f"{PROG} cancel: no mission {text!r} in store {store.root}")
    if len(matches) > 1:
        ids = ", ".join(r["id"] for r in matches[:5])
        raise CommandError(f"{PROG} cancel: {text!r} matches {len(matches)} missions ({ids})")
    return store.row(matches[0]["id"]) or {}


# -- status ---------------------------------------------------------------------------------


def store_views(store: MissionStore, now: float) -> list[pg.MissionView]:
    views = []
    for row in store.rows():
        view = pg.mission_view(row, now)
        if _worker_gone(row) and row.get("backend") == "subprocess":
            view = view._replace(
                stall_reason=f"worker pid {row['pid']} is not running (it ended without a "
                "final event; an orchestrator on this store will record it as failed)"
            )
        views.append(view)
    return views


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    store = open_store(args.store, "status")
    views = store_views(store, time.time())
    counts = pg.format_counts(pg.status_counts(views))
    console.print(f"Store: {store.root} ({len(views)} missions: {counts})")
    if views:
        for line in console.table(views):
            console.print(line)
    return EXIT_OK


# -- cancel ---------------------------------------------------------------------------------


def cmd_cancel(args: argparse.Namespace, console: Console) -> int:
    from .runtime.processes import kill_process_tree, owner_alive, process_alive

    store = open_store(args.store, "cancel")
    row = resolve_mission_id(store, args.id)
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
    pid, started = row.get("pid"), row.get("pid_started")
    was_alive = pid is not None and process_alive(pid, started)
    if was_alive:
        kill_process_tree(pid, started, CANCEL_GRACE_SECS)
    event = store.finish_if_unfinished(mission_id, "cancelled", "cancelled from the command line")
    if event is None:
        final = store.row(mission_id) or {}
        raise CommandError(
            f"{PROG} cancel: mission {mission_id} finished ({final.get('status')}) before it "
            "could be cancelled"
        )
    if was_alive and process_alive(pid, started):  # pragma: no cover - SIGKILL was sent
        raise CommandError(f"{PROG} cancel: worker pid {pid} of {mission_id} did not stop")
    how = f"worker pid {pid} stopped" if was_alive else f"its worker pid {pid} was already gone"
    console.print(f"Cancelled mission {mission_id} ({how}).")
    return EXIT_OK


# -- demo -----------------------------------------------------------------------------------


def demo_goals(n: int) -> list[str]:
    goals = []
    for i in range(n):
        goal = DEMO_GOALS[i % len(DEMO_GOALS)]
        if i >= len(DEMO_GOALS):
            goal += f" (take {i // len(DEMO_GOALS) + 1})"
        goals.append(goal)
    return goals


def expected_status(goal: str) -> tuple[str, ...]:
    if "[hang]" in goal:
        return ("cancelled", "stalled")
    if "[fail]" in goal:
        return ("failed",)
    return ("succeeded",)


class DemoRun:
    """One ``mission-widgets demo``: submit, watch (live or plain), report."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.missions: list[Mission] = []
        self.flagged: dict[str, float] = {}  # stalled mission id -> monotonic time seen
        self.cancelled_stalls: set[str] = set()
        self.started = time.monotonic()
        self.frame: LiveFrame | None = None
        self._plain_seen: dict[str, tuple] = {}
        self._plain_last = 0.0

    # -- setup ------------------------------------------------------------------------------

    def build(self) -> list[Mission]:
        from .core.mission import Mission

        goals = demo_goals(self.args.n)
        if self.args.stall:
            goals.insert(0, HANG_GOAL)
        missions = []
        for goal in goals:
            # [fail] missions abort when retries run out, so they end "failed" (the default
            # policy, "escalate" with no escalate_fn, would end them "stalled").
            policy = {"on_max_retries": "abort"} if "[fail]" in goal else None
            missions.append(Mission(goal, stall_policy=policy))
        return missions

    # -- watching ---------------------------------------------------------------------------

    def views(self, now: float) -> list[pg.MissionView]:
        views = []
        for mission in self.missions:
            view = pg.mission_view(mission, now)
            if mission.id in self.flagged and mission.id not in self.cancelled_stalls:
                view = view._replace(
                    stall_reason=f"{view.stall_reason or 'stalled'} -> cancelling it",
                    status="stalled",
                    bar_style="warning",
                )
            views.append(view)
        return views

    def finished(self, orch: MissionOrchestrator) -> bool:
        """Whether every demo mission has its end in the store (one query per redraw)."""
        rows = orch.store.rows_by_id(m.id for m in self.missions)
        return all((rows.get(m.id) or {}).get("finished_at") is not None for m in self.missions)

    def handle_stalls(self, orch: MissionOrchestrator) -> None:
        flagged = orch.reconcile(
            stall_threshold_secs=max(600.0, self.args.timeout),
            no_progress_secs=self.args.stall_secs,
        )
        now = time.monotonic()
        mine = {m.id for m in self.missions}
        for mission_id in flagged:
            if mission_id in mine:
                self.flagged.setdefault(mission_id, now)
        for mission_id, seen in list(self.flagged.items()):
            if mission_id in self.cancelled_stalls or now - seen < STALL_SHOW_SECS:
                continue
            # reconcile() keeps a flagged mission in orch.running, so cancel() stops it.
            orch.cancel(mission_id)
            self.cancelled_stalls.add(mission_id)

    def header(self, views: Sequence[pg.MissionView]) -> str:
        counts = pg.format_counts(pg.status_counts(views))
        clock = pg.format_duration(time.monotonic() - self.started)
        return f"{PROG} demo  {clock}  ({counts})"

    def draw(self, now: float) -> None:
        views = self.views(now)
        if self.frame is not None:
            cols, rows = self.console.size
            shown, hidden = fit_views(views, max(rows - 4, 3))
            lines = [self.console.bold(pg.truncate(self.header(views), cols - 1))]
            lines += self.console.table(shown)
            if hidden:
                more = pg.format_counts(pg.status_counts(hidden))
                lines.append(f"  ... and {len(hidden)} more ({more})")
            self.frame.draw(lines[: max(rows - 1, 1)])
            return
        clock = time.monotonic() - self.started
        changed = False
        for view in views:
            key = pg.change_key(view)
            if self._plain_seen.get(view.mission_id) != key:
                self._plain_seen[view.mission_id] = key
                self.console.print(pg.format_line(view, clock, ascii=self.console.ascii))
                changed = True
        if changed:
            self._plain_last = clock
        elif clock - self._plain_last >= PLAIN_HEARTBEAT_SECS:
            self._plain_last = clock
            counts = pg.format_counts(pg.status_counts(views))
            self.console.print(f"[{pg.format_duration(clock):>6}] still going: {counts}")

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> int:
        from .orchestrator import MissionOrchestrator

        args, console = self.args, self.console
        store_dir = args.store or tempfile.mkdtemp(prefix="mission-widgets-demo-")
        orch = MissionOrchestrator(
            max_concurrent=args.concurrency,
            model=args.model,
            store=store_dir,
            cancel_grace_secs=CANCEL_GRACE_SECS,
        )
        store_root = orch.store.root
        try:
            self.missions = self.build()
            earlier = len(orch.missions)
            for mission in self.missions:
                orch.submit(mission)
            console.print(
                f"Running {len(self.missions)} demo missions, up to {args.concurrency} at a "
                f"time, each in its own worker process."
            )
            console.print(
                f"Model: {args.model!r}, the offline demo model (simulated work, no API key). "
                f"Store: {store_root}"
            )
            if earlier:
                console.print(f"(the store already held {earlier} missions from earlier runs)")
            if args.stall:
                console.print(
                    f"--stall: the [hang] mission will be flagged stalled after "
                    f"{args.stall_secs:g} s without progress, then cancelled."
                )
            if console.live:
                console.print()
                self.frame = LiveFrame(console)
            return self._watch(orch, store_root)
        finally:
            if self.frame is not None:
                self.frame.close(erase=False)
            orch.close()

    def _watch(self, orch: MissionOrchestrator, store_root: Path) -> int:
        args = self.args
        deadline = self.started + args.timeout
        orch.start_queued()
        try:
            while True:
                orch.poll_async()
                if args.stall:
                    self.handle_stalls(orch)
                self.draw(time.time())
                if self.finished(orch):
                    break
                if time.monotonic() > deadline:
                    return self._give_up(orch, f"timed out after {args.timeout:g} s")
                time.sleep(REFRESH_SECS)
        except KeyboardInterrupt:
            return self._give_up(orch, "interrupted", EXIT_INTERRUPTED)
        orch.poll_async()
        if self.frame is not None:
            self.frame.close(erase=True)
            self.frame = None
        return self._report(orch, store_root)

    def _give_up(self, orch: MissionOrchestrator, why: str, code: int = EXIT_FAIL) -> int:
        if self.frame is not None:
            self.frame.close(erase=False)
            self.frame = None
        stopped = []
        rows = orch.store.rows_by_id(m.id for m in self.missions)
        for mission in self.missions:
            if (rows.get(mission.id) or {}).get("finished_at") is None:
                try:
                    if orch.cancel(mission.id):
                        stopped.append(mission.id)
                except Exception as exc:  # keep stopping the others
                    self.console.print(f"could not cancel {mission.id}: {exc}")
        self.console.print(
            f"{PROG} demo: {why}; cancelled {len(stopped)} unfinished missions. "
            f"Store: {orch.store.root}"
        )
        return code

    def _report(self, orch: MissionOrchestrator, store_root: Path) -> int:
        console = self.console
        ids = {m.id for m in self.missions}
        frame = orch.status()
        records = [r for r in frame.to_dict("records") if r["id"] in ids]
        views = [pg.mission_view(r, time.time()) for r in records]
        took = pg.format_duration(time.monotonic() - self.started)
        console.print(console.bold(f"Final status ({len(views)} missions, {took}):"))
        for line in console.table(views):
            console.print(line)
        console.print()
        unexpected = []
        notes = []
        for view in views:
            wanted = expected_status(view.goal)
            if view.status not in wanted:
                unexpected.append(view)
            elif "[fail]" in view.goal:
                notes.append(f"{view.short_id} failed on purpose (its goal contains [fail])")
            elif "[hang]" in view.goal:
                notes.append(
                    f"{view.short_id} hung on purpose ([hang]): flagged stalled, then {view.status}"
                )
        counts = pg.format_counts(pg.status_counts(views))
        summary = f"Demo finished in {took}: {counts}."
        if notes:
            summary += " " + "; ".join(notes) + "."
        console.print(summary)
        for view in unexpected:
            console.print(
                f"UNEXPECTED: {view.short_id} ({view.goal!r}) ended {view.status}"
                + (f": {pg.table_note(view)}" if pg.table_note(view) else "")
            )
        console.print(f"See it again: {PROG} status --store {store_root}")
        return EXIT_FAIL if unexpected else EXIT_OK


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    previous = None
    if hasattr(signal, "SIGTERM"):
        try:
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread
            previous = None
    try:
        return DemoRun(args, console).run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# -- lab ------------------------------------------------------------------------------------


def quickstart_notebook() -> Path:
    return Path(__file__).resolve().parent.parent / "notebooks" / "01-quickstart.ipynb"


def cmd_lab(args: argparse.Namespace, console: Console) -> int:
    import importlib.util
    import subprocess

    if importlib.util.find_spec("jupyterlab") is None:
        raise CommandError(
            f"{PROG} lab: JupyterLab is not installed in {sys.prefix}; install it with "
            f"`{sys.executable} -m pip install jupyterlab` (or `pip install mission-widgets[dev]`)"
        )
    env = dict(os.environ)
    if args.store is not None:
        from .runtime.store import resolve_store_path

        env["MISSION_WIDGETS_STORE"] = str(resolve_store_path(args.store).expanduser().resolve())
    command = [sys.executable, "-m", "jupyter", "lab"]
    notebook = quickstart_notebook()
    cwd = None
    if notebook.is_file():
        command.append(notebook.name)
        cwd = str(notebook.parent)
    else:
        console.print(
            f"note: the quickstart notebook is not at {notebook} (it ships with the source "
            "repository); opening JupyterLab in the current directory."
        )
    if args.port is not None:
        command += ["--port", str(args.port)]
    console.print("Starting: " + " ".join(command))
    try:
        return subprocess.call(command, cwd=cwd, env=env)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# -- argument parsing -----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


STORE_HELP = (
    "mission store: a directory, or a bare name for a named store in the state directory "
    "(default: $MISSION_WIDGETS_STORE, else ~/.local/state/mission_widgets/default)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run goal-driven, multi-step missions outside your notebook and watch them. "
            f"New here? Try `{PROG} demo`."
        ),
        epilog="Exit codes: 0 ok, 1 could not do it (see message), 2 usage error or missing "
        "store, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a few demo missions in worker processes with live progress",
        description=(
            "Run N missions with the offline demo model (simulated work, no API key) in "
            "worker processes, up to K at a time, and show their progress live. The mission "
            "whose goal contains [fail] fails on purpose; with --stall, a [hang] mission is "
            "flagged stalled and cancelled. Ends with the final status table."
        ),
    )
    demo.add_argument(
        "-n", type=_positive_int, default=6, metavar="N", help="number of missions (default: 6)"
    )
    demo.add_argument(
        "--concurrency",
        "-k",
        type=_positive_int,
        default=3,
        metavar="K",
        help="missions running at once (default: 3)",
    )
    demo.add_argument(
        "--store",
        metavar="DIR",
        help="mission store to use (default: a fresh temporary directory, printed at the start)",
    )
    demo.add_argument(
        "--model",
        choices=DEMO_MODELS,
        default="demo",
        help="demo model speed: demo (~1.2 s a step), demo:fast (no waiting), demo:slow "
        "(default: demo)",
    )
    demo.add_argument(
        "--no-live",
        action="store_true",
        help="print a line per change instead of redrawing a table (automatic when stdout "
        "is not a terminal)",
    )
    demo.add_argument(
        "--stall",
        action="store_true",
        help="add a mission that hangs, to see stall detection and cancel",
    )
    demo.add_argument(
        "--stall-secs",
        type=_positive_float,
        default=4.0,
        metavar="S",
        help="with --stall: seconds without progress before a mission counts as stalled "
        "(default: 4)",
    )
    demo.add_argument(
        "--timeout",
        type=_positive_float,
        default=180.0,
        metavar="S",
        help="cancel whatever is still running after S seconds and exit 1 (default: 180)",
    )

    status = sub.add_parser(
        "status",
        help="print the status table of a store",
        description="Print one line per mission of a store (running or finished). Reads the "
        "store without changing it; works while missions run and after a kernel restart.",
    )
    status.add_argument("--store", metavar="DIR", help=STORE_HELP)

    cancel = sub.add_parser(
        "cancel",
        help="cancel a running or queued mission",
        description="Stop a mission's worker process (SIGTERM, then SIGKILL) and record it "
        "as cancelled. ID is the full mission id or the short id shown by `status`.",
    )
    cancel.add_argument("id", metavar="ID", help="mission id (full, or the short id)")
    cancel.add_argument("--store", metavar="DIR", help=STORE_HELP)

    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on the quickstart notebook",
        description="Start JupyterLab (python -m jupyter lab) on notebooks/01-quickstart.ipynb.",
    )
    lab.add_argument(
        "--store", metavar="DIR", help="store for the notebooks (sets $MISSION_WIDGETS_STORE)"
    )
    lab.add_argument("--port", type=_port, metavar="P", help="port for JupyterLab")
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "demo": cmd_demo,
    "status": cmd_status,
    "cancel": cmd_cancel,
    "lab": cmd_lab,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mission-widgets`` and ``python -m mission_widgets``; returns the exit
    code (argparse's usage errors give 2)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    console = Console(sys.stdout, live=not getattr(args, "no_live", False))
    try:
        return COMMANDS[args.command](args, console)
    except CommandError as exc:
        sys.stdout.flush()
        print(str(exc), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stay quiet about it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
