"""A mission's start claim, recorded on the Dask scheduler in one step.

:func:`claim_on_scheduler` runs *on the scheduler* (``Client.run_on_scheduler``): it reads
the mission's previous claim and records this start under the scheduler's task metadata
``["mission_widgets"]["claims"][mission_id]`` in one call on the scheduler's event loop, so
it is atomic and costs the task one round trip (``get_metadata`` then ``set_metadata`` cost
two, and a second task could slip in between). This module is pickled *by value* (see
:mod:`.dask_worker`): a scheduler without mission_widgets installed runs it too. Standard
library only, and nothing else in it.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def claim_on_scheduler(
    mission_id: str, address: str, dask_scheduler: Any = None
) -> dict[str, Any] | None:
    """Record a start of ``mission_id`` on worker ``address``; return the previous claim."""
    metadata = dask_scheduler.task_metadata
    for name in ("mission_widgets", "claims"):  # as set_metadata makes the path
        if not isinstance(metadata.get(name), dict):
            metadata[name] = {}
        metadata = metadata[name]
    previous = metadata.get(mission_id)
    start = 1 + int((previous or {}).get("start", 0))
    metadata[mission_id] = {"start": start, "worker": address, "at": time.time()}
    return previous
