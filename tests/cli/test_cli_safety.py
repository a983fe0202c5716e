"""Terminal output is safe (hostile goals, errors and ids are escaped) and store paths that
cannot be stores are refused by every command with exit 2 and one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.cli import cli_env
from support.stores import needs_root

from mission_widgets.cli.terminal import escape_control, safe_view
from mission_widgets.core.progress import mission_view
from mission_widgets.runtime.store import MissionStore

#: A goal that would retitle the terminal (OSC), clear it (CSI 2J, also as the C1 CSI),
#: ring the bell, return the cursor and reverse the text that follows (bidi override).
HOSTILE_GOAL = "Plan \x1b]0;pwned\x07a trip \x1b[2J\x9b31m\rto Lisbon \u202egnp.exe"
HOSTILE_ERROR = "boom\x1b[31m red \x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\\x08"
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\r", "\u202e", "\x08")


def test_escape_control_shows_every_control_character():
    assert escape_control("a\x1b[31mb") == "a\\x1b[31mb"
    assert (
        escape_control("bell\x07 nul\x00 del\x7f c1\x9b") == "bell\\x07 nul\\x00 del\\x7f c1\\x9b"
    )
    assert escape_control("cr\rback\x08") == "cr\\x0dback\\x08"
    assert escape_control("rtl \u202e iso \u2066") == "rtl \\u202e iso \\u2066"
    assert escape_control("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert escape_control("caf\u00e9 \u2713 \u4e2d") == "caf\u00e9 \u2713 \u4e2d"  # text stays
    assert escape_control(42) == "42"
    escaped = escape_control(HOSTILE_GOAL)
    assert not any(ch in escaped for ch in FORBIDDEN)


def test_safe_view_escapes_goal_error_and_stall_reason():
    row = {
        "id": "mission_20260101000000_0badf00d",
        "goal": HOSTILE_GOAL,
        "status": "failed",
        "error": HOSTILE_ERROR,
        "stall_reason": "late \x1b[5m",
    }
    view = safe_view(mission_view(row, 0.0))
    for text in (view.goal, view.last_error, view.stall_reason, view.mission_id):
        assert not any(ch in text for ch in FORBIDDEN), text
    assert view.goal.startswith("Plan \\x1b]0;pwned\\x07a trip")
    assert view.stall_reason == "late \\x1b[5m"


def test_status_prints_hostile_goals_and_errors_escaped(run_cli, tmp_path):
    store = MissionStore(tmp_path / "hostile")
    store.register(
        "mission_20260101000000_0badf00d", HOSTILE_GOAL, backend="subprocess", owner=None
    )
    store.register(
        "mission_20260101000001_0badcafe", "quiet goal", backend="subprocess", owner=None
    )
    store.finish_if_unfinished("mission_20260101000001_0badcafe", "failed", HOSTILE_ERROR)
    store.close()
    done = run_cli("status", "--store", tmp_path / "hostile", COLUMNS="300")
    assert done.returncode == 0, done.stderr
    assert not any(ch in done.stdout for ch in FORBIDDEN), repr(done.stdout)
    assert "Plan \\x1b]0;pwned\\x07a trip" in done.stdout
    assert "boom\\x1b[31m red" in done.stdout


def test_error_messages_escape_what_the_user_typed(run_cli, tmp_path):
    MissionStore(tmp_path / "s").close()
    done = run_cli("cancel", "x\x1b]0;pwned\x07", "--store", tmp_path / "s")
    assert done.returncode == 1
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "no mission" in done.stderr


# -- store paths that cannot be stores --------------------------------------------------------

COMMANDS = [
    ("status",),
    ("cancel", "abc"),
    ("demo", "-n", "1", "--model", "demo:fast"),
]


def _one_clear_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_store_path_that_is_a_file_exits_2(run_cli, tmp_path, command):
    afile = tmp_path / "passwd"
    afile.write_text("root:x:0:0\n")
    line = _one_clear_line(run_cli(*command, "--store", afile))
    assert f"{afile} is a file, not a mission store directory" in line
    assert line.startswith(f"mission-widgets {command[0]}: ")
    assert afile.read_text() == "root:x:0:0\n"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_store_path_inside_a_file_exits_2(run_cli, tmp_path, command):
    afile = tmp_path / "passwd"
    afile.write_text("x")
    line = _one_clear_line(run_cli(*command, "--store", afile / "store"))
    assert f"is inside {afile}, which is a file" in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_default_store_that_is_a_file_exits_2(run_cli, tmp_path, command):
    afile = tmp_path / "default-file"
    afile.write_text("x")
    args = [a for a in command]
    if command[0] == "demo":  # the demo's default is a temporary store: name it
        args += ["--store", str(afile)]
    line = _one_clear_line(run_cli(*args, MISSION_WIDGETS_STORE=str(afile)))
    assert "is a file" in line


@needs_root
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_unreadable_store_exits_2(tmp_path, command):
    """A store the user cannot read (here: root's 0700 store, read by nobody)."""
    store = tmp_path / "private"
    MissionStore(store).close()
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
        + ["-m", "mission_widgets", *command, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(tmp_path),
        stdin=subprocess.DEVNULL,
    )
    line = _one_clear_line(done)
    assert str(store) in line and "ermission denied" in line
