"""The one interface every backend (the place a mission executes) fills in.

The orchestrator, the CLI and the panel ask a backend what they need to know about a
mission's store row -- is it alive, can it be stopped from this process, stop it, why did it
end without a final event -- and never compare backend names. Concrete backends live in
their own modules and are found by name through :mod:`mission_widgets.runtime.registry`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.errors import MissionError
from .processes import find_process, kill_process_tree, owner_token

if TYPE_CHECKING:
    from ..core.budget import SharedLedger
    from ..core.mission import Mission
    from .store import MissionStore

#: Called with a mission id when what executed it has ended (the orchestrator wakes up).
ExitCallback = Callable[[str], None]

#: A store row as backends read it (STORE's MissionRow is one).
Row = Mapping[str, Any]


class CannotStopHere(MissionError):
    """This process cannot stop what executes a mission (the message says who can)."""


def _ignore_exit(mission_id: str) -> None:
    """The ``on_exit`` of a backend that nobody waits on (an observer)."""


class Backend:
    """Base class. Backends fill in :meth:`launch` and refine the questions about a row.

    The defaults answer for a backend this process knows nothing about: it cannot tell
    whether the mission is alive (``None``) and cannot stop it.
    """

    name: ClassVar[str] = "base"
    #: Whether missions on this backend beat a heartbeat (stall detection by heartbeat).
    has_heartbeat: ClassVar[bool] = False
    #: Whether the orchestrator's Mission object is the running one (no mirroring needed).
    runs_in_kernel: ClassVar[bool] = False

    def __init__(
        self, store: MissionStore, on_exit: ExitCallback | None = None, **options: Any
    ) -> None:
        if options:
            raise TypeError(f"backend {self.name!r} takes no options, got {', '.join(options)}")
        self.store = store
        self.on_exit: ExitCallback = on_exit if on_exit is not None else _ignore_exit

    @classmethod
    def observer(cls, store: MissionStore) -> Backend:
        """An instance that launches nothing, to ask about rows (CLI, another kernel)."""
        return cls(store)

    # -- running ------------------------------------------------------------------------

    def check(self, mission: Mission) -> None:
        """Raise at submit time if ``mission`` cannot run on this backend."""

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        """Start ``mission``; return the pid that runs it (if any)."""
        raise NotImplementedError(f"backend {self.name!r} cannot launch missions")

    def shared_ledger(self, budget_id: str, state: dict[str, Any]) -> SharedLedger:
        """Make a budget many missions share (``MissionOrchestrator(budget=...)``) where this
        backend's workers reach it atomically: by default the store's ``budgets`` table."""
        from .store_ledger import StoreLedger

        self.store.create_budget(budget_id, owner_token(), state)
        return StoreLedger(str(self.store.root), budget_id)

    def release(self, mission_id: str) -> None:
        """Forget a mission that has ended (its process handle, thread, ...)."""

    def shutdown(self) -> None:
        """Release resources (not the missions: they keep running)."""

    # -- questions about a row ------------------------------------------------------------

    def is_alive(self, row: Row) -> bool | None:
        """Whether something still executes the mission; None when this process cannot tell."""
        return None

    def can_cancel_here(self, row: Row) -> bool:
        """Whether :meth:`stop` can stop what executes the mission from this process."""
        return False

    def stop(self, row: Row, grace: float) -> None:
        """Stop what executes the mission (asking first, forcing after ``grace`` seconds)."""
        raise CannotStopHere(self._not_here(row))

    def exit_reason(self, row: Row) -> str:
        """Why the mission ended without a final event (its executor is gone)."""
        return (
            f"what ran mission {row['id']} on the {row.get('backend')!r} backend is gone "
            "without a final event"
        )

    def _not_here(self, row: Row) -> str:
        return (
            f"mission {row['id']} runs on the {row.get('backend')!r} backend (process "
            f"{row.get('pid')}); this process ({os.getpid()}) cannot stop it: cancel it from "
            f"the orchestrator that runs it, orch.cancel({row['id']!r})"
        )


class ProcessBackend(Backend):
    """A backend whose missions run in an OS process of this machine, named in the row by
    ``pid`` and ``pid_started`` (so any process on the machine can judge and stop it)."""

    def is_alive(self, row: Row) -> bool | None:
        return find_process(row.get("pid"), row.get("pid_started")) is not None

    def can_cancel_here(self, row: Row) -> bool:
        return row.get("pid") is not None

    def stop(self, row: Row, grace: float) -> None:
        if not self.can_cancel_here(row):
            raise CannotStopHere(self._not_here(row))
        kill_process_tree(row["pid"], row.get("pid_started"), grace)
