"""Missions from a script: what a blocking call says when it is interrupted, and what a
script says when it exits while missions still run.

``run_all()``, ``wait()`` and ``wait_all()`` block. Ctrl-C (or a kernel interrupt) there
raises :class:`MissionsInterrupted`, a ``KeyboardInterrupt`` whose message is a summary
(what was cancelled, what still runs, how to look at it) instead of a traceback into
``threading.py``. A process that exits while missions of its orchestrators still run in
worker processes prints one line about them to stderr (:func:`track`).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.mission import Mission
    from ..runtime.backend import Backend
    from ..runtime.store import MissionStore


class Orchestrator(Protocol):
    """What these helpers read of a MissionOrchestrator (named here: no import circle)."""

    store: MissionStore
    backend: Backend
    running: list[Mission]
    pending_queue: list[Mission]
    _backend_of: dict[str, str]

    def cancel(self, mission_id: str, *, reason: str = ...) -> Any: ...


#: How many missions a summary names before it says "and N more".
NAMED_IN_SUMMARY = 5
#: Backends whose missions die with the process that runs them (they never outlive it).
IN_PROCESS_BACKENDS = frozenset({"thread"})


class MissionsInterrupted(KeyboardInterrupt):
    """A blocking call (``run_all``, ``wait``, ``wait_all``) was interrupted.

    The message says what was cancelled and what still runs; ``cancelled`` and
    ``still_running`` hold the mission ids. Catch it as ``KeyboardInterrupt``.
    """

    def __init__(self, summary: str, cancelled: Sequence[str], still_running: Sequence[str]):
        super().__init__(summary)
        self.summary = summary
        self.cancelled = list(cancelled)
        self.still_running = list(still_running)

    def __str__(self) -> str:
        return self.summary


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def name_missions(missions: Sequence[Mission]) -> str:
    """``mission_x ('goal'), ...`` for the first few, then ``and N more``."""
    named = [f"{m.id} ({_short(m.goal)!r})" for m in missions[:NAMED_IN_SUMMARY]]
    if len(missions) > NAMED_IN_SUMMARY:
        named.append(f"and {len(missions) - NAMED_IN_SUMMARY} more")
    return ", ".join(named)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def shows_them(store_root: os.PathLike[str] | str, n: int = 2) -> str:
    """``mission-widgets status`` shows them (or it, for ``n`` = 1), adding ``--store`` only
    when the command line would not find this store by itself."""
    root = os.path.realpath(os.fspath(store_root))
    text = "`mission-widgets status` shows " + ("it" if n == 1 else "them")
    return text if root == default_cli_store() else f"{text} (add `--store {root}`)"


def default_cli_store() -> str:
    """The store ``mission-widgets status`` opens without ``--store`` (outside a notebook)."""
    from ..runtime.store_location import state_dir

    given = os.environ.get("MISSION_WIDGETS_STORE")
    chosen = os.path.expanduser(given) if given else os.path.join(state_dir(), "default")
    return os.path.realpath(chosen)


def interrupted(
    call: str,
    store_root: os.PathLike[str] | str,
    *,
    cancelled: Sequence[Mission] = (),
    still_running: Sequence[Mission] = (),
    queued: Sequence[Mission] = (),
    not_stopped: Sequence[Mission] = (),
) -> MissionsInterrupted:
    """The exception a blocking ``call`` raises when interrupted, with its summary."""
    parts = [f"{call} interrupted"]
    if cancelled:
        parts.append(f"cancelled {plural(len(cancelled), 'mission')}: {name_missions(cancelled)}")
    if not_stopped:
        parts.append(
            f"interrupted again while cancelling: {plural(len(not_stopped), 'mission')} "
            f"may still run: {name_missions(not_stopped)}"
        )
    if still_running:
        verb = "still runs" if len(still_running) == 1 else "still run"
        parts.append(
            f"{plural(len(still_running), 'mission')} {verb} (not cancelled): "
            f"{name_missions(still_running)}"
        )
    if queued:
        verb = "stays queued" if len(queued) == 1 else "stay queued"
        parts.append(f"{plural(len(queued), 'mission')} {verb}: {name_missions(queued)}")
    if not (cancelled or still_running or queued or not_stopped):
        parts.append("nothing was running")
    elif still_running or not_stopped:
        n = len(still_running) + len(not_stopped)
        parts.append(f"cancel with orch.cancel(id); {shows_them(store_root, n)}")
    return MissionsInterrupted(
        "; ".join(parts) + ".",
        [m.id for m in cancelled],
        [m.id for m in [*still_running, *not_stopped]],
    )


def abandon(orch: Orchestrator, batch: Sequence[Mission], call: str) -> BaseException:
    """Cancel what of ``batch`` is queued or running (an interrupted ``call``) and return
    the summary to raise: what was cancelled, what else of ``orch`` still runs."""
    cancelled: list[Mission] = []
    pending = [m for m in batch if m in orch.running or m in orch.pending_queue]
    try:
        for mission in pending:
            if orch.cancel(mission.id, reason=f"cancelled: {call} was interrupted"):
                cancelled.append(mission)
    except KeyboardInterrupt:  # pressed again while cancelling: say what may still run
        not_stopped = [m for m in pending if m not in cancelled and not m.is_finished]
        return interrupted(call, orch.store.root, cancelled=cancelled, not_stopped=not_stopped)
    others = [m for m in orch.running if m not in batch and not m.is_finished]
    return interrupted(call, orch.store.root, cancelled=cancelled, still_running=others)


# -- the notice at exit ---------------------------------------------------------------------

_live: weakref.WeakSet[Orchestrator] = weakref.WeakSet()
_registered = False
_register_lock = threading.Lock()


def track(orchestrator: Orchestrator) -> None:
    """Remember ``orchestrator`` for the notice at exit (registered once per process)."""
    global _registered
    with _register_lock:
        _live.add(orchestrator)
        if not _registered:
            atexit.register(notice_at_exit)
            _registered = True


def still_running_elsewhere(orchestrators: Iterable[Orchestrator]) -> dict[str, list[str]]:
    """Store root -> ids of the missions that run outside this process and have not ended
    (by their store rows, not the mirrors, which may lag)."""
    found: dict[str, list[str]] = {}
    for orch in orchestrators:
        try:
            ids = [
                m.id
                for m in list(orch.running)
                if orch._backend_of.get(m.id, orch.backend.name) not in IN_PROCESS_BACKENDS
            ]
            rows = orch.store.rows_by_id(ids) if ids else {}
        except Exception:  # a closed or damaged store: nothing to say about it at exit
            continue
        alive = [i for i in ids if i in rows and rows[i]["finished_at"] is None]
        if alive:
            root = str(orch.store.root)
            known = found.setdefault(root, [])
            known.extend(i for i in alive if i not in known)
    return found


def exit_notice(found: dict[str, list[str]]) -> str | None:
    """The one line a script prints when it exits while missions still run."""
    n = sum(len(ids) for ids in found.values())
    if not n:
        return None
    verb = "still runs in a worker process" if n == 1 else "still run in worker processes"
    if len(found) == 1:
        return f"{plural(n, 'mission')} {verb}; {shows_them(next(iter(found)), n)}"
    stores = ", ".join(f"--store {root}" for root in found)
    return f"{plural(n, 'mission')} {verb}; `mission-widgets status` shows them ({stores})"


def notice_at_exit() -> None:
    try:
        text = exit_notice(still_running_elsewhere(list(_live)))
    except Exception:  # never turn an exit into a traceback
        return
    if text:
        try:
            print(text, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed
            pass
