"""Errors and damaged stores: no raw sqlite3 error leaves a public method;
a read-only, full, corrupt, empty or missing database is a StoreError naming the file and
what was found, nothing is overwritten, and check/repair rebuild what the files allow."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from support.executors import echo
from support.runtime import one_step
from support.stores import finished_row, run_python
from support.waiting import wait_for, worker_processes

from mission_widgets import MissionOrchestrator
from mission_widgets.runtime.store import MissionStore, StoreError, check_store, repair_store


@pytest.fixture
def ran_store(tmp_path, orchestrators):
    """A store holding three missions really run by worker processes (then closed)."""
    orch = orchestrators(store=tmp_path / "ran")
    missions = [one_step(f"goal {i}", echo) for i in range(3)]
    for mission in missions:
        orch.run_async(mission)
    for mission in missions:
        orch.wait(mission.id, timeout=60)
    orchestrators.cleanup()
    # A worker writes its last checkpoint after its end event: wait until every one is gone.
    wait_for(lambda: not worker_processes(tmp_path / "ran"), timeout=30, what="workers exited")
    return tmp_path / "ran", sorted(m.id for m in missions)


def _snapshot(root):
    return {
        os.path.relpath(os.path.join(folder, name), root): os.path.getsize(
            os.path.join(folder, name)
        )
        for folder, _, names in os.walk(root)
        for name in names
    }


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage"])
def test_a_damaged_database_beside_mission_files_is_reported_and_left_alone(ran_store, damage):
    root, ids = ran_store
    db = root / "store.sqlite"
    if damage == "missing":
        db.unlink()
    else:
        db.write_bytes(b"" if damage == "empty" else b"\x00garbage, not SQLite\n" * 500)
    before = _snapshot(root)
    with pytest.raises(StoreError) as caught:
        MissionOrchestrator(store=root)
    message = str(caught.value)
    assert str(root) in message and "damaged" in message
    assert f"mission-widgets store repair --store {root}" in message
    assert {"missing": "is missing", "empty": "empty (0 bytes)", "garbage": "not a"}[
        damage
    ] in message
    assert _snapshot(root) == before  # nothing overwritten, nothing created

    report = check_store(root)
    assert not report.ok and len(report["orphan_files"]) >= 3 * 3
    assert "NEEDS ATTENTION" in str(report) and "orphan files: " in str(report)
    repaired = repair_store(root)
    assert sorted(repaired["rows_rebuilt"]) == ids and repaired["problems"] == []
    if damage == "garbage":  # moved aside, never deleted
        aside = repaired["moved_aside"][0]
        assert aside.startswith(f"{db}.damaged-")
        assert Path(aside).read_bytes()[:9] == b"\x00garbage,"
    assert check_store(root).ok and str(check_store(root)).endswith("problems: 0")
    orch = MissionOrchestrator(store=root)
    try:
        status = orch.status().set_index("id")
        assert sorted(status.index) == ids
        assert set(status["status"]) == {"succeeded"}
        for mission_id in ids:
            events = [e["event"] for e in orch.store.events_for(mission_id)]
            assert events.count("mission_done") == 1 and "step_done" in events
    finally:
        orch.close()


def test_check_store_names_orphans_and_rows_without_files(store):
    finished_row(store, "no-files")
    with open(store.path_of("log", "lost"), "w") as handle:
        handle.write("Traceback: boom\n")
    report = check_store(store.root)
    assert report["integrity"] == "ok" and not report["ok"]
    assert report["orphan_files"] == [store.path_of("log", "lost")]
    assert report["rows_without_files"] == ["no-files"]
    repaired = repair_store(store.root)
    assert repaired["rows_rebuilt"] == ["lost"] and repaired["moved_aside"] == []
    row = store.row("lost")
    assert row["status"] == "failed" and "lost.log" in row["error"]
    assert store.row("no-files") is not None  # existing rows are kept


def test_no_raw_sqlite_error_leaves_a_public_method(store):
    with pytest.raises(StoreError, match="rows\\(\\) failed: OperationalError"):
        store.rows(where="WHERE no_such_column = 1")
    with pytest.raises(StoreError, match=str(store.db_path)):
        store.rows(columns=("nonsense(",))


def test_a_store_that_is_an_sqlite_database_of_something_else_is_refused(tmp_path):
    root = tmp_path / "other"
    MissionStore(root).close()
    (root / "store.sqlite").unlink()
    conn = sqlite3.connect(root / "store.sqlite")
    conn.execute("CREATE TABLE invoices (n INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="database of something else"):
        MissionStore(root)
    conn = sqlite3.connect(root / "store.sqlite")
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]
    conn.close()


def test_a_read_only_store_is_a_store_error_naming_it(nobody_dir):
    """As user nobody (root ignores file modes): nobody's store, made read-only."""
    root = nobody_dir / "ro"
    code = """
        import sys
        from mission_widgets.runtime.store import MissionStore, StoreError
        store = MissionStore(sys.argv[1])
        store.register("m", "goal", backend="subprocess", owner=None)
        store.close()
        """
    assert run_python(code, str(root), as_nobody=True).returncode == 0
    subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
    done = run_python(
        """
        import sys
        from mission_widgets.runtime.store import MissionStore, StoreError
        try:
            store = MissionStore(sys.argv[1])
            store.register("n", "goal", backend="subprocess", owner=None)
        except StoreError as exc:
            print(exc)
        """,
        str(root),
        as_nobody=True,
    )
    assert done.returncode == 0, done.stderr  # a StoreError, not a raw sqlite3 error
    assert str(root / "store.sqlite") in done.stdout
    assert "read-only" in done.stdout or "unable to open" in done.stdout


def test_a_full_disk_is_a_store_error_and_loses_what_was_stored(small_disk):
    store = MissionStore(small_disk / "s")
    written = []
    with pytest.raises(StoreError) as caught:
        for i in range(1000):  # 20 MB of goals on a 4 MiB disk
            store.register(f"m{i}", "x" * 20_000, backend="subprocess", owner=None)
            written.append(f"m{i}")
    message = str(caught.value)
    assert "register() failed, the disk is full" in message
    assert str(small_disk / "s" / "store.sqlite") in message
    assert written and [r["id"] for r in store.rows(("id",))] == written
    store.close()
