"""``mission-widgets prune`` and ``store check|repair`` on real stores made by real demo runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mission_widgets.cli.history import parse_duration, parse_statuses
from mission_widgets.runtime.store import MissionStore


@pytest.fixture
def demo_store(run_cli, tmp_path) -> Path:
    """A kept store with 4 succeeded missions and 1 failed one."""
    store = tmp_path / "history"
    done = run_cli("demo", "-n", "5", "--model", "demo:fast", "--store", store)
    assert done.returncode == 0, done.stdout + done.stderr
    return store


def rows(store: Path) -> dict[str, dict]:
    opened = MissionStore(store, create=False)
    try:
        return {row["id"]: row for row in opened.rows()}
    finally:
        opened.close()


def test_parse_duration_and_statuses():
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("1.5h") == 5400
    assert parse_duration("90") == 90
    assert parse_duration("2w") == 14 * 86400
    assert parse_statuses("failed, cancelled") == ["failed", "cancelled"]
    for bad in ("7 days", "-1d", "d", ""):
        with pytest.raises(Exception, match="expected a duration"):
            parse_duration(bad)
    with pytest.raises(Exception, match="choose from succeeded, failed, stalled, cancelled"):
        parse_statuses("failed,running")


def test_prune_by_status_removes_rows_and_files(run_cli, demo_store):
    before = rows(demo_store)
    failed = [i for i, r in before.items() if r["status"] == "failed"]
    assert len(failed) == 1
    log = demo_store / "logs" / f"{failed[0]}.log"
    assert log.exists()
    done = run_cli("prune", "--status", "failed", "--store", demo_store)
    assert done.returncode == 0, done.stderr
    assert f"Removed 1 finished missions from {demo_store.resolve()}" in done.stdout
    assert failed[0] in done.stdout
    after = rows(demo_store)
    assert set(after) == set(before) - set(failed)
    assert not log.exists()


def test_prune_by_age_keeps_recent_missions(run_cli, demo_store):
    kept = run_cli("prune", "--older-than", "1h", "--store", demo_store)
    assert kept.returncode == 0, kept.stderr
    assert "Nothing to prune" in kept.stdout
    assert len(rows(demo_store)) == 5
    time.sleep(0)  # finished_at is in the past already: "older than 0 s" takes them all
    gone = run_cli("prune", "--older-than", "0s", "--store", demo_store)
    assert gone.returncode == 0, gone.stderr
    assert "Removed 5 finished missions" in gone.stdout
    assert rows(demo_store) == {}


def test_prune_by_short_id_and_an_unfinished_mission(run_cli, demo_store):
    target = sorted(rows(demo_store))[0]
    done = run_cli("prune", "--id", target[-8:], "--store", demo_store)
    assert done.returncode == 0, done.stderr
    assert target not in rows(demo_store)

    store = MissionStore(demo_store)
    store.register(
        "mission_20260101000000_0000beef", "still queued", backend="subprocess", owner=None
    )
    store.close()
    refused = run_cli("prune", "--id", "0000beef", "--store", demo_store)
    assert refused.returncode == 1
    assert "not removed, not finished: mission_20260101000000_0000beef (pending)" in refused.stderr
    assert "mission_20260101000000_0000beef" in rows(demo_store)


@pytest.mark.parametrize(
    "args", [["--status", "running"], ["--status", "nope"], ["--older-than", "soon"]]
)
def test_prune_refuses_bad_filters(run_cli, demo_store, args):
    done = run_cli("prune", *args, "--store", demo_store)
    assert done.returncode == 2
    assert "usage: mission-widgets prune" in done.stderr
    assert len(rows(demo_store)) == 5


def test_store_check_of_a_healthy_store(run_cli, demo_store):
    done = run_cli("store", "check", "--store", demo_store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Database: ok" in done.stdout and "OK:" in done.stdout


def _corrupt(db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[100:4096] = os.urandom(3996)  # the schema page
    db.write_bytes(bytes(data))


def test_a_corrupt_store_is_reported_and_repaired(run_cli, demo_store):
    before = rows(demo_store)
    _corrupt(demo_store / "store.sqlite")

    status = run_cli("status", "--store", demo_store)
    assert status.returncode == 2, status.stdout + status.stderr
    assert len(status.stderr.strip().splitlines()) == 1 and "Traceback" not in status.stderr
    assert "store.sqlite" in status.stderr

    check = run_cli("store", "check", "--store", demo_store)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "DAMAGED" in check.stdout and "store repair" in check.stdout

    repair = run_cli("store", "repair", "--store", demo_store)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert "Damaged database moved aside to" in repair.stdout
    assert f"Rebuilt {len(before)} missions" in repair.stdout
    after = rows(demo_store)
    assert set(after) == set(before)
    assert {i: r["status"] for i, r in after.items()} == {i: r["status"] for i, r in before.items()}
    assert list(demo_store.glob("store.sqlite.damaged-*"))
    assert run_cli("store", "check", "--store", demo_store).returncode == 0


def test_store_commands_on_a_missing_store_exit_2(run_cli, tmp_path):
    for action in ("check", "repair"):
        done = run_cli("store", action, "--store", tmp_path / "none")
        assert done.returncode == 2, done.stdout + done.stderr
        assert str(tmp_path / "none") in done.stderr
        assert not (tmp_path / "none").exists()
