"""Record first: a submit the store refuses (its write lock held elsewhere) or whose mission
cannot be written leaves nothing behind: no mission file, no row, nothing for ``store check``
to call damaged or for ``store repair`` to bring back as queued."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

import pytest
from support.executors import noop
from support.runtime import one_step

from mission_widgets import MissionOrchestrator
from mission_widgets.runtime.payload import MissionNotPicklableError
from mission_widgets.runtime.store import StoreError, check_store, repair_store


@contextlib.contextmanager
def write_locked(db_path):
    """Another connection holds the store's write lock (BEGIN IMMEDIATE) meanwhile."""
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def store_files(root) -> list[str]:
    return sorted(
        os.path.join(folder, name)
        for sub in ("missions", "logs", "checkpoints")
        for folder, _, names in os.walk(os.path.join(root, sub))
        for name in names
    )


def assert_nothing_left(orch, mission_id):
    root = orch.store.root
    assert store_files(root) == []
    assert orch.store.row(mission_id) is None
    assert mission_id not in orch.status()["id"].tolist()
    report = check_store(root)
    assert report.ok, str(report)
    assert repair_store(root)["rows_rebuilt"] == []
    later = MissionOrchestrator(2, store=root)  # the next kernel finds nothing to run
    try:
        assert later.pending_queue == [] and later.start_queued() == []
        assert orch.store.row(mission_id) is None
    finally:
        later.close()


def test_a_submit_refused_by_a_locked_store_leaves_no_file_and_no_row(orchestrators):
    orch = orchestrators(2)
    mission = one_step("never submitted", noop)
    with write_locked(orch.store.db_path), pytest.raises(StoreError, match="locked"):
        orch.submit(mission)
    assert orch.pending_queue == []
    assert_nothing_left(orch, mission.id)


def test_a_submit_whose_mission_cannot_be_written_leaves_no_row(orchestrators):
    orch = orchestrators(2)
    mission = one_step("cannot be pickled", noop)
    mission.session.set_memory("lock", threading.Lock())
    with pytest.raises(MissionNotPicklableError):
        orch.submit(mission)
    assert orch.pending_queue == []
    assert_nothing_left(orch, mission.id)
