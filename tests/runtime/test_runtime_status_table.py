"""``status()`` shows every change of a mission's row, including the ones a health check
writes alone: a stall flag (or its clearing) changes neither progress nor last activity,
and a cached status table must still show it at once."""

from __future__ import annotations

import pytest

from mission_widgets.core.events import make_event
from mission_widgets.runtime.processes import owner_token

MISSION_ID = "mission_20260101000000_5ta11ed0"


@pytest.fixture
def running(orchestrators):
    """An orchestrator and a mission of its store that runs (a live owner: nobody ends it)."""
    orch = orchestrators()
    orch.store.register(
        MISSION_ID, "a mission that runs", backend="subprocess", owner=owner_token()
    )
    orch.store.append_event(make_event("mission_start", MISSION_ID), {"status": "running"})
    return orch


def shown(orch, column: str):
    frame = orch.status()
    return frame.loc[frame["id"] == MISSION_ID, column].item()


def flag(orch, name: str, summary: dict, **fields) -> None:
    """Write what the health check writes: an event of its own (source "reconcile", which
    is not the mission's activity) that changes only ``summary``'s columns."""
    before = orch.store.row(MISSION_ID)
    event = make_event(name, MISSION_ID, source="reconcile", **fields)
    orch.store.append_event(event, summary)
    after = orch.store.row(MISSION_ID)
    # row_version is the store's own change stamp (every change moves it), not a column.
    changed = {key for key in after if after[key] != before[key]} - {"row_version"}
    assert changed == set(summary), changed  # nothing else moved: the flag is alone
    assert after["row_version"] > before["row_version"]


def test_status_shows_a_stall_flag_that_changes_nothing_else(running):
    assert shown(running, "stall_reason") is None  # cached now
    flag(running, "mission_stall", {"stall_reason": "no_progress"}, reason="no_progress")
    assert shown(running, "stall_reason") == "no_progress"
    assert shown(running, "status") == "running"

    flag(running, "mission_recovered", {"stall_reason": None})
    assert shown(running, "stall_reason") is None
