"""What a script that runs ``mission-widgets`` relies on: the exit code says what happened
(0 done, 1 could not do it, 2 a usage error or a store that cannot be used), an error line
never writes a raw control character to the terminal, whatever path or id it names."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import cli_env, wait_for

from mission_widgets.runtime.processes import owner_token
from mission_widgets.runtime.store import MissionStore

#: A name that would retitle the terminal and turn its text red if printed raw.
HOSTILE = "s\x1b]0;pwned\x07\x1b[31m"
RAW = ("\x1b", "\x07")
DEAD_OWNER = "4206649:1.0"  # a pid that does not run


def queued(store_dir: Path, owner: str) -> str:
    store = MissionStore(store_dir)
    mission_id = "mission_20260101000000_0000c0de"
    store.register(mission_id, "a queued mission", backend="subprocess", owner=owner)
    store.close()
    return mission_id


def assert_escaped(text: str) -> None:
    assert not any(ch in text for ch in RAW), repr(text)
    assert "\\x1b" in text, repr(text)  # the culprit is shown, escaped


def test_a_store_path_that_is_a_file_exits_2_and_is_printed_escaped(run_cli, tmp_path):
    path = tmp_path / HOSTILE
    path.write_text("not a store")
    done = run_cli("status", "--store", path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is a file, not a mission store directory" in done.stderr
    assert_escaped(done.stderr)


def test_a_store_locked_while_cancel_writes_exits_2_naming_it_escaped(run_cli, tmp_path):
    """A StoreError raised while the command runs (past opening the store) is a store that
    cannot be used: exit 2, one line, no traceback."""
    store_dir = tmp_path / HOSTILE
    mission_id = queued(store_dir, DEAD_OWNER)
    holder = sqlite3.connect(store_dir / "store.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        done = run_cli("cancel", mission_id, "--store", store_dir)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is locked" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert_escaped(done.stderr)
    store = MissionStore(store_dir, create=False)
    try:
        assert store.row(mission_id)["finished_at"] is None  # nothing was changed
    finally:
        store.close()


def test_an_unknown_id_exits_1_and_is_printed_escaped(run_cli, tmp_path):
    MissionStore(tmp_path / "s").close()
    done = run_cli("cancel", HOSTILE, "--store", tmp_path / "s")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no mission" in done.stderr
    assert_escaped(done.stderr)


def test_cancel_of_a_mission_that_ended_otherwise_meanwhile_exits_1(tmp_path):
    """The owner (here: this process, alive) is asked to cancel a queued mission; before it
    does, the mission ends succeeded. Nothing was cancelled, so ``cancel`` must not say 0."""
    store_dir = tmp_path / "store"
    mission_id = queued(store_dir, owner_token())
    store = MissionStore(store_dir)
    cancel = subprocess.Popen(
        [sys.executable, "-m", "mission_widgets", "cancel", mission_id, "--store", store_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(tmp_path),
    )
    try:
        wait_for(lambda: store.take_requests([mission_id], ["cancel"]), 60, "the cancel request")
        store.finish_if_unfinished(mission_id, "succeeded", None)  # ended otherwise
        out, err = cancel.communicate(timeout=60)
    finally:
        if cancel.poll() is None:
            cancel.kill()
            cancel.communicate()
        store.close()
    assert cancel.returncode == 1, out + err
    assert f"mission {mission_id} ended succeeded" in err
    assert "Cancelled" not in out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("cancel",), 2),  # usage: no id
        (("decide", "x", "maybe"), 2),  # usage: not an action
        (("status", "--store", "missing"), 2),  # no store there
    ],
)
def test_usage_errors_and_missing_stores_exit_2(run_cli, tmp_path, args, code):
    done = run_cli(*(str(tmp_path / a) if a == "missing" else a for a in args))
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
