"""``mission-widgets demo``: the README's first command on a fresh machine.

It runs a few missions with the offline demo model in worker processes and draws their
progress live in the terminal (a table redrawn in place on a TTY, one line per change
otherwise), then prints the final table and checks each mission ended as its goal says it
should (``[fail]`` fails on purpose, ``[hang]`` is flagged no_progress while it still runs,
then cancelled). Its store is a temporary directory, removed at the end unless
``--keep-store`` (or ``--store``) is given.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import progress as pg
from .common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CommandError,
    store_location,
)
from .terminal import Console, LiveFrame, escape_control, fit_views

if TYPE_CHECKING:
    from ..core.mission import Mission
    from ..orchestrator import MissionOrchestrator

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
#: How long a flagged (no_progress) mission stays visible before the demo cancels it.
STALL_SHOW_SECS = 1.5
#: SIGTERM -> SIGKILL grace when cancelling a worker.
CANCEL_GRACE_SECS = 3.0
#: What the final report says of a mission cancelled by someone else than the demo.
CANCELLED_ELSEWHERE = "cancelled from another process"


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
        return ("cancelled",)
    if "[fail]" in goal:
        return ("failed",)
    return ("succeeded",)


class DemoRun:
    """One ``mission-widgets demo``: submit, watch (live or plain), report."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.missions: list[Mission] = []
        self.flagged: dict[str, float] = {}  # flagged mission id -> monotonic time seen
        #: Missions this demo cancelled itself (stalls, timeout, Ctrl-C): any other
        #: cancelled mission was cancelled from another process.
        self.cancelled_here: set[str] = set()
        self.started = time.monotonic()
        self.frame: LiveFrame | None = None
        self._plain_seen: dict[str, tuple[Any, ...]] = {}
        self._plain_last = 0.0

    # -- setup ------------------------------------------------------------------------------

    def build(self) -> list[Mission]:
        from ..core.mission import Mission

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

    def open(self, store_dir: str) -> MissionOrchestrator:
        from ..orchestrator import MissionOrchestrator
        from ..runtime.store import StoreError

        try:
            return MissionOrchestrator(
                max_concurrent=self.args.concurrency,
                model=self.args.model,
                store=store_dir,
                cancel_grace_secs=CANCEL_GRACE_SECS,
            )
        except (StoreError, OSError) as exc:
            raise CommandError(f"{PROG} demo: {exc}", EXIT_USAGE) from None

    # -- watching ---------------------------------------------------------------------------

    def views(self, now: float) -> list[pg.MissionView]:
        views = []
        for mission in self.missions:
            view = pg.mission_view(mission, now)
            if mission.id in self.flagged and mission.id not in self.cancelled_here:
                view = view._replace(
                    stall_reason=f"{view.stall_reason or 'no_progress'} -> cancelling it",
                    bar_style="warning",
                )
            views.append(view)
        return views

    def finished(self, orch: MissionOrchestrator) -> bool:
        """Whether every demo mission has its end in the store (one query per redraw)."""
        return not self.unfinished(orch)

    def unfinished(self, orch: MissionOrchestrator) -> list[str]:
        """The demo's missions whose end is not in the store yet."""
        rows = orch.store.rows_by_id(m.id for m in self.missions)
        return [
            m.id for m in self.missions if m.id not in rows or rows[m.id]["finished_at"] is None
        ]

    def cancel(self, orch: MissionOrchestrator, mission_id: str, reason: str) -> bool:
        """Cancel one of the demo's missions, saying why (its error in the table)."""
        self.cancelled_here.add(mission_id)
        return orch.cancel(mission_id, reason=f"cancelled by the demo: {reason}")

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
            if mission_id in self.cancelled_here or now - seen < STALL_SHOW_SECS:
                continue
            # reconcile() keeps a flagged mission in orch.running, so cancel() stops it.
            self.cancel(orch, mission_id, f"no progress for {self.args.stall_secs:g} s")

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
                self.console.print(self.console.line(view, clock))
                changed = True
        if changed:
            self._plain_last = clock
        elif clock - self._plain_last >= PLAIN_HEARTBEAT_SECS:
            self._plain_last = clock
            counts = pg.format_counts(pg.status_counts(views))
            self.console.print(f"[{pg.format_duration(clock):>6}] still going: {counts}")

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> int:
        args = self.args
        temporary = args.store is None
        if temporary:
            store_dir = tempfile.mkdtemp(prefix="mission-widgets-demo-")
        else:
            store_dir = str(store_location(args.store, "demo"))
        try:
            orch = self.open(store_dir)
            store_root = orch.store.root
            try:
                self.start(orch, store_root, temporary)
                return self._watch(orch, store_root, keep=not temporary or args.keep_store)
            finally:
                if self.frame is not None:
                    self.frame.close(erase=False)
                orch.close()
        finally:
            if temporary and not args.keep_store:
                shutil.rmtree(store_dir, ignore_errors=True)

    def start(self, orch: MissionOrchestrator, store_root: Path, temporary: bool) -> None:
        args, console = self.args, self.console
        self.missions = self.build()
        earlier = len(orch.missions)
        for mission in self.missions:
            orch.submit(mission)
        console.print(
            f"Running {len(self.missions)} demo missions, up to {args.concurrency} at a "
            f"time, each in its own worker process."
        )
        where = f"Store: {store_root}"
        if temporary and not args.keep_store:
            where += " (temporary: removed at the end; --keep-store keeps it)"
        console.print(
            f"Model: {args.model!r}, the offline demo model (simulated work, no API key). {where}"
        )
        if earlier:
            console.print(f"(the store already held {earlier} missions from earlier runs)")
        if args.stall:
            console.print(
                f"--stall: the [hang] mission will be flagged no_progress after "
                f"{args.stall_secs:g} s without progress, then cancelled."
            )
        if console.live:
            console.print()
            self.frame = LiveFrame(console)

    def _watch(self, orch: MissionOrchestrator, store_root: Path, *, keep: bool) -> int:
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
        return self._report(orch, store_root, keep=keep)

    def _give_up(self, orch: MissionOrchestrator, why: str, code: int = EXIT_FAIL) -> int:
        if self.frame is not None:
            self.frame.close(erase=False)
            self.frame = None
        stopped = []
        for mission_id in self.unfinished(orch):
            try:
                if self.cancel(orch, mission_id, why):
                    stopped.append(mission_id)
            except Exception as exc:  # keep stopping the others
                self.console.print(f"could not cancel {mission_id}: {escape_control(str(exc))}")
        self.console.print(
            f"{PROG} demo: {why}; cancelled {len(stopped)} unfinished missions. "
            f"Store: {orch.store.root}"
        )
        return code

    def _report(self, orch: MissionOrchestrator, store_root: Path, *, keep: bool) -> int:
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
            if view.status == "cancelled" and view.mission_id not in self.cancelled_here:
                notes.append(f"{view.short_id} was {CANCELLED_ELSEWHERE}")
            elif view.status not in expected_status(view.goal):
                unexpected.append(view)
            elif "[fail]" in view.goal:
                notes.append(f"{view.short_id} failed on purpose (its goal contains [fail])")
            elif "[hang]" in view.goal:
                notes.append(
                    f"{view.short_id} hung on purpose ([hang]): flagged no_progress, then "
                    f"{view.status}"
                )
        counts = pg.format_counts(pg.status_counts(views))
        summary = f"Demo finished in {took}: {counts}."
        if notes:
            summary += " " + "; ".join(notes) + "."
        console.print(summary)
        for view in unexpected:
            note = pg.table_note(view)
            console.print(
                escape_control(
                    f"UNEXPECTED: {view.short_id} ({view.goal!r}) ended {view.status}"
                    + (f": {note}" if note else "")
                )
            )
        if keep:
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


def add_demo_parser(sub: Any, positive_int: Any, positive_float: Any) -> None:
    """The ``demo`` subcommand's arguments."""
    demo = sub.add_parser(
        "demo",
        help="run a few demo missions in worker processes with live progress",
        description=(
            "Run N missions with the offline demo model (simulated work, no API key) in "
            "worker processes, up to K at a time, and show their progress live. The mission "
            "whose goal contains [fail] fails on purpose; with --stall, a [hang] mission is "
            "flagged no_progress and cancelled. Ends with the final status table. The store is a "
            "temporary directory, removed at the end unless --keep-store or --store is given."
        ),
    )
    demo.add_argument(
        "-n", type=positive_int, default=6, metavar="N", help="number of missions (default: 6)"
    )
    demo.add_argument(
        "--concurrency",
        "-k",
        type=positive_int,
        default=3,
        metavar="K",
        help="missions running at once (default: 3)",
    )
    demo.add_argument(
        "--store",
        metavar="DIR",
        help="mission store to use and keep (default: a temporary directory, removed at the end)",
    )
    demo.add_argument(
        "--keep-store",
        action="store_true",
        help="keep the temporary store at the end (its path is printed), to look at it with "
        f"`{PROG} status --store DIR`",
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
        type=positive_float,
        default=4.0,
        metavar="S",
        help="with --stall: seconds without progress before a mission is flagged no_progress "
        "(default: 4)",
    )
    demo.add_argument(
        "--timeout",
        type=positive_float,
        default=180.0,
        metavar="S",
        help="cancel whatever is still running after S seconds and exit 1 (default: 180)",
    )
