"""``mission-widgets`` end to end: real ``python -m mission_widgets`` subprocesses, real
worker processes, stores under ``tmp_path``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import cli_env, wait_for, worker_processes
from support.waiting import default_sigint

from mission_widgets import Mission, MissionOrchestrator
from mission_widgets.cli import main
from mission_widgets.runtime.processes import find_process
from mission_widgets.runtime.store import MissionStore, StoreError

ID_RE = re.compile(r"^\S\s([0-9a-f]{8})\s", re.M)


def table_ids(text: str) -> list[str]:
    return ID_RE.findall(text)


def store_rows(path: Path) -> list[dict]:
    store = MissionStore(path, create=False)
    try:
        return store.rows()
    finally:
        store.close()


# -- demo ---------------------------------------------------------------------------------------


def test_demo_fast_runs_and_prints_the_final_table(run_cli, tmp_path):
    store = tmp_path / "demo-store"
    done = run_cli("demo", "-n", "3", "--model", "demo:fast", "--store", store)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Final status (3 missions" in out
    final = out[out.index("Final status") :]
    assert final.count("succeeded") >= 3
    assert len(table_ids(final)) == 3
    assert "Demo finished in" in out and "3 succeeded" in out
    assert f"mission-widgets status --store {store.resolve()}" in out
    assert "\x1b[" not in out  # not a terminal: no escapes, no colour
    rows = store_rows(store)
    assert [r["status"] for r in rows] == ["succeeded"] * 3


def test_demo_plain_output_prints_changes_only(run_cli, tmp_path):
    done = run_cli("demo", "-n", "2", "--model", "demo:fast", "--store", tmp_path / "s")
    assert done.returncode == 0, done.stderr
    progress_lines = [ln for ln in done.stdout.splitlines() if ln.startswith("[")]
    assert progress_lines, done.stdout
    assert len(progress_lines) == len(set(ln[9:] for ln in progress_lines))  # no repeats
    assert any("succeeded" in ln for ln in progress_lines)


def test_demo_shows_the_failed_mission_and_still_exits_0(run_cli, tmp_path):
    store = tmp_path / "five"
    done = run_cli("demo", "-n", "5", "--model", "demo:fast", "--store", store)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    final = out[out.index("Final status") :]
    failed = [ln for ln in final.splitlines() if " failed " in ln]
    assert failed and "[fail]" in failed[0]
    assert failed[0].startswith("x ")  # marked
    assert "simulated failure" in final  # and why
    assert "failed on purpose" in out
    assert "4 succeeded, 1 failed" in out

    status = run_cli("status", "--store", store)
    assert status.returncode == 0, status.stderr
    assert f"Store: {store.resolve()} (5 missions: 4 succeeded, 1 failed)" in status.stdout
    assert sorted(table_ids(status.stdout)) == sorted(table_ids(final))
    assert "Draft a quiz on fractions [fail]" in status.stdout


def test_demo_default_store_is_temporary_and_removed(run_cli, tmp_path):
    done = run_cli("demo", "-n", "1", "--model", "demo:fast")
    assert done.returncode == 0, done.stderr
    match = re.search(r"Store: (\S+) \(temporary: removed at the end", done.stdout)
    assert match, done.stdout
    store = Path(match.group(1))
    assert store.parent == (tmp_path / "tmp").resolve()
    assert store.name.startswith("mission-widgets-demo-")
    assert not store.exists()
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left behind
    assert not (tmp_path / "default-store").exists()
    assert "mission-widgets status --store" not in done.stdout  # nothing to see again


def test_demo_keep_store_keeps_the_temporary_store(run_cli, tmp_path):
    done = run_cli("demo", "-n", "1", "--model", "demo:fast", "--keep-store")
    assert done.returncode == 0, done.stderr
    match = re.search(r"Store: (\S+)", done.stdout)
    assert match, done.stdout
    store = Path(match.group(1))
    assert store.parent == (tmp_path / "tmp").resolve()
    assert (store / "store.sqlite").is_file()
    assert "removed at the end" not in done.stdout
    assert f"mission-widgets status --store {store}" in done.stdout
    assert [r["status"] for r in store_rows(store)] == ["succeeded"]


def test_demo_cleans_up_when_interrupted_by_timeout(run_cli, tmp_path):
    args = ("demo", "-n", "1", "--model", "demo:fast", "--stall", "--stall-secs", "600")
    done = run_cli(*args, "--timeout", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "timed out after 2 s" in done.stdout
    assert list((tmp_path / "tmp").iterdir()) == []


def test_demo_stall_flags_and_cancels_the_hanging_mission(run_cli, tmp_path):
    store = tmp_path / "stall"
    done = run_cli(
        "demo",
        "-n",
        "2",
        "--model",
        "demo:fast",
        "--stall",
        "--stall-secs",
        "1",
        "--store",
        store,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    hang_lines = [ln for ln in out.splitlines() if "[hang]" in ln]
    # Flagged while it still runs (a health flag, not a status), then cancelled.
    assert any(" running " in ln and "no_progress" in ln for ln in hang_lines), out
    final = out[out.index("Final status") :]
    assert "cancelled" in final and " stalled " not in final
    assert "flagged no_progress, then cancelled" in out
    statuses = {r["goal"]: r["status"] for r in store_rows(store)}
    assert statuses.pop("Wait for a reply that never comes [hang]") == "cancelled"
    assert set(statuses.values()) == {"succeeded"}
    assert not worker_processes(store.resolve())


def test_demo_timeout_cancels_what_is_left_and_exits_1(run_cli, tmp_path):
    store = tmp_path / "slowpoke"
    done = run_cli(
        "demo",
        "-n",
        "1",
        "--model",
        "demo:fast",
        "--stall",
        "--stall-secs",
        "600",
        "--timeout",
        "2",
        "--store",
        store,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # On a loaded machine the quick mission may not have ended within 2 s either: what
    # holds is that the hang is cancelled and the summary counts what was cancelled.
    said = re.search(r"timed out after 2 s; cancelled (\d+) unfinished missions", done.stdout)
    assert said, done.stdout
    statuses = [r["status"] for r in store_rows(store)]
    assert "cancelled" in statuses and set(statuses) <= {"succeeded", "cancelled"}, statuses
    assert int(said.group(1)) == statuses.count("cancelled")
    # Its own timeout, said as such (not "cancelled by user"), in the store and the table.
    errors = {r["error"] for r in store_rows(store) if r["status"] == "cancelled"}
    assert errors == {"cancelled by the demo: timed out after 2 s"}, errors
    assert "cancelled by user" not in done.stdout
    assert not worker_processes(store.resolve())


def start_hanging_demo(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """A ``demo`` of one mission plus a ``[hang]`` one (stall check far off) on store
    ``tmp_path/name``; returns the process and the store."""
    store = tmp_path / name
    proc = subprocess.Popen(
        [sys.executable, "-m", "mission_widgets", "demo", "-n", "1", "--model", "demo:fast"]
        + ["--stall", "--stall-secs", "600", "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
        preexec_fn=default_sigint,  # a test sends it Ctrl-C, also under nohup
    )
    return proc, store


def started_hang(store: Path) -> dict | None:
    """The store row of the demo's ``[hang]`` mission once it has started, else None."""
    try:
        rows = store_rows(store)
    except StoreError:
        return None
    return next((r for r in rows if "[hang]" in r["goal"] and r["started_at"]), None)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_demo_interrupted_cancels_its_missions(tmp_path):
    proc, store = start_hanging_demo(tmp_path, "interrupted")
    try:
        wait_for(lambda: started_hang(store), 30, "the [hang] mission to start")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "interrupted; cancelled" in out
    hang = [r for r in store_rows(store) if "[hang]" in r["goal"]]
    assert hang[0]["status"] == "cancelled"
    assert not worker_processes(store.resolve())


def run_in_pty(tmp_path: Path, *args: str, columns: int = 110, rows: int = 30):
    """Run the CLI with a pseudo-terminal (``columns`` x ``rows``) as its stdin/stdout/stderr;
    return (exit code, everything it wrote)."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = cli_env(tmp_path)
    for name in ("NO_COLOR", "COLUMNS", "LINES"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mission_widgets", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        close_fds=True,
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(leader, 65536)
            except OSError:  # the other side closed
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=60)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


CURSOR_UP = re.compile(r"\x1b\[\d+A")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_demo_on_a_terminal_redraws_in_place(tmp_path):
    code, out = run_in_pty(
        tmp_path, "demo", "-n", "3", "--model", "demo:fast", "--store", str(tmp_path / "t")
    )
    assert code == 0, out
    assert CURSOR_UP.search(out)  # the table is redrawn in place
    assert "\x1b[2K" in out
    assert "\x1b[32m" in out  # colour (NO_COLOR unset)
    assert "\x1b[?25h" in out  # cursor shown again
    assert "\u2588" in out  # Unicode bar
    assert "Final status (3 missions" in out
    frames = [ln for ln in out.split("\r\n") if "PROGRESS" in ln]
    assert frames and all(len(ANSI.sub("", ln)) <= 110 for ln in frames)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_no_live_on_a_terminal_prints_plain_lines(tmp_path):
    code, out = run_in_pty(
        tmp_path,
        *("demo", "-n", "2", "--model", "demo:fast", "--no-live"),
        *("--store", str(tmp_path / "t")),
    )
    assert code == 0, out
    assert not CURSOR_UP.search(out)
    assert "\x1b[2K" not in out
    assert any(ln.startswith("[") and "succeeded" in ln for ln in out.split("\r\n"))
    assert "Final status (2 missions" in out


# -- status --------------------------------------------------------------------------------------


def test_status_of_a_missing_store_exits_2_and_names_it(run_cli, tmp_path):
    missing = tmp_path / "nowhere" / "store"
    done = run_cli("status", "--store", missing)
    assert done.returncode == 2
    assert str(missing) in done.stderr
    assert "no mission store" in done.stderr
    assert done.stdout == ""
    assert not missing.exists() and not missing.parent.exists()


def test_status_of_a_directory_that_is_not_a_store(run_cli, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    done = run_cli("status", "--store", plain)
    assert done.returncode == 2
    assert "no mission store" in done.stderr
    assert list(plain.iterdir()) == []  # nothing created


def test_status_of_the_default_store(run_cli, tmp_path):
    done = run_cli("status")  # $MISSION_WIDGETS_STORE points into tmp_path, not created yet
    assert done.returncode == 2
    assert str(tmp_path / "default-store") in done.stderr


def test_status_while_a_mission_runs(run_cli, hanging):
    orch, mission = hanging
    done = run_cli("status", "--store", orch.store.root)
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if mission.id[-8:] in ln)
    assert "running" in line and "[hang]" in line
    assert "1 running" in done.stdout


def test_status_notes_a_worker_that_is_gone(run_cli, tmp_path):
    store = MissionStore(tmp_path / "ghost")
    ghost = "mission_20260101000000_0badf00d"
    store.register(ghost, "ghost goal", backend="subprocess", owner=None)
    store.set_process(ghost, 2**22 + 12345, 1.0)  # above Linux's pid limit: no such process
    store.close()
    done = run_cli("status", "--store", tmp_path / "ghost")
    assert done.returncode == 0, done.stderr
    assert "worker process 4206649 is gone" in done.stdout


# -- cancel --------------------------------------------------------------------------------------


@pytest.fixture
def hanging(orchestrators, tmp_path):
    """An orchestrator (this process) with a ``[hang]`` mission running in a worker."""
    orch = orchestrators(store=tmp_path / "api-store", model="demo:fast")
    mission = Mission("Wait for an answer that never comes [hang]")
    orch.run_async(mission)

    def started():
        row = orch.store.row(mission.id) or {}
        return row.get("pid") and row.get("started_at")

    wait_for(started, 30, "the [hang] mission to start in its worker")
    try:
        yield orch, mission
    finally:
        if mission in orch.running:
            orch.cancel(mission.id)
        orch.close()


def test_cancel_a_running_mission(run_cli, hanging):
    orch, mission = hanging
    row = orch.store.row(mission.id)
    assert find_process(row["pid"], row["pid_started"]) is not None
    done = run_cli("cancel", mission.id[-8:], "--store", orch.store.root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Cancelled mission {mission.id}" in done.stdout
    assert f"worker pid {row['pid']} stopped" in done.stdout
    assert find_process(row["pid"], row["pid_started"]) is None
    assert orch.wait(mission.id, timeout=20).status == "cancelled"
    assert orch.store.row(mission.id)["status"] == "cancelled"
    assert not worker_processes(orch.store.root)

    again = run_cli("cancel", mission.id, "--store", orch.store.root)
    assert again.returncode == 1
    assert "already finished (cancelled)" in again.stderr


def test_cancel_an_unknown_id_exits_1(run_cli, tmp_path):
    store = tmp_path / "s"
    assert run_cli("demo", "-n", "1", "--model", "demo:fast", "--store", store).returncode == 0
    done = run_cli("cancel", "mission_nope", "--store", store)
    assert done.returncode == 1
    assert "no mission 'mission_nope'" in done.stderr
    assert str(store.resolve()) in done.stderr


def test_cancel_a_finished_mission_exits_1(run_cli, tmp_path):
    store = tmp_path / "s"
    assert run_cli("demo", "-n", "1", "--model", "demo:fast", "--store", store).returncode == 0
    mission_id = store_rows(store)[0]["id"]
    done = run_cli("cancel", mission_id, "--store", store)
    assert done.returncode == 1
    assert f"mission {mission_id} already finished (succeeded)" in done.stderr


def test_cancel_in_a_missing_store_exits_2(run_cli, tmp_path):
    done = run_cli("cancel", "abc", "--store", tmp_path / "missing")
    assert done.returncode == 2
    assert str(tmp_path / "missing") in done.stderr
    assert not (tmp_path / "missing").exists()


def test_cancel_a_thread_mission_of_another_process(run_cli, tmp_path):
    """A thread-backend mission lives inside its kernel: the CLI must not kill that process;
    it asks the kernel (a request in the store), which stops the mission and records it."""
    orch = MissionOrchestrator(store=tmp_path / "threads", model="demo:fast", backend="thread")
    try:
        mission = Mission("a threaded mission that hangs [hang]")
        orch.run_async(mission)
        wait_for(lambda: (orch.store.row(mission.id) or {}).get("started_at"), 20, "start")
        done = run_cli("cancel", mission.id, "--store", orch.store.root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"process {os.getpid()}, which runs it, honoured the request" in done.stdout
        assert orch.store.row(mission.id)["status"] == "cancelled"
    finally:
        orch.store.finish_if_unfinished(mission.id, "cancelled", "test teardown")
        orch.close()


def test_cancel_a_mission_queued_by_another_live_process(run_cli, tmp_path):
    """The owner (this process's orchestrator) honours the CLI's request: the queued mission
    ends cancelled and never starts, while the one running keeps running."""
    orch = MissionOrchestrator(store=tmp_path / "queue", model="demo:fast", max_concurrent=1)
    running = Mission("Hold the only slot [hang]")
    queued = Mission("Wait in the queue")
    try:
        orch.submit(running)
        orch.submit(queued)
        orch.start_queued()  # one slot: the first runs, the second waits in the queue
        wait_for(lambda: orch.store.row(running.id)["started_at"], 30, "the first to start")
        assert orch.store.row(queued.id)["started_at"] is None
        done = run_cli("cancel", queued.id[-8:], "--store", orch.store.root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Cancelled mission {queued.id}: process {os.getpid()}" in done.stdout
        row = orch.store.row(queued.id)
        assert row["status"] == "cancelled" and row["started_at"] is None
        assert orch.store.row(running.id)["finished_at"] is None
    finally:
        orch.cancel_all()
        orch.close()


def test_cancel_a_mission_queued_by_a_process_that_is_gone(run_cli, tmp_path):
    store = MissionStore(tmp_path / "orphans")
    orphan = "mission_20260101000000_00000bad"
    store.register(orphan, "queued by a dead kernel", backend="subprocess", owner="4206649:1.0")
    store.close()
    done = run_cli("cancel", orphan, "--store", tmp_path / "orphans")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "it was queued and had not started" in done.stdout
    assert store_rows(tmp_path / "orphans")[0]["status"] == "cancelled"


# -- argument handling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["demo", "--bogus"],
        ["demo", "-n", "0"],
        ["demo", "-n", "many"],
        ["demo", "--model", "openai:gpt-4o"],
        ["demo", "--concurrency", "-1"],
        ["status", "extra"],
        ["cancel"],
        ["lab", "--port", "99999"],
        ["frobnicate"],
    ],
)
def test_bad_flags_are_usage_errors(run_cli, args):
    done = run_cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage: mission-widgets" in done.stderr
    assert "error:" in done.stderr


def test_no_command_prints_help_and_exits_2(run_cli):
    done = run_cli()
    assert done.returncode == 2
    assert "demo" in done.stderr and "status" in done.stderr


@pytest.mark.parametrize("command", ["demo", "status", "cancel", "lab"])
def test_help(run_cli, command):
    done = run_cli(command, "--help")
    assert done.returncode == 0
    assert f"usage: mission-widgets {command}" in done.stdout


def test_main_returns_exit_codes_in_process(capsys):
    assert main(["--version"]) == 0
    assert "mission-widgets" in capsys.readouterr().out
    assert main(["demo", "--nope"]) == 2
    assert "unrecognized arguments: --nope" in capsys.readouterr().err


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("mission-widgets") == "mission_widgets.cli:main"


def _store_of(path: Path, n: int, finished_every: int = 3) -> list[str]:
    store = MissionStore(path)
    ids = [f"mission_20260101{i:06d}_{i:08x}" for i in range(n)]
    for i, mission_id in enumerate(ids):
        store.register(mission_id, f"goal number {i}", backend="subprocess", owner=None)
        if i % finished_every == 0:
            store.finish_if_unfinished(mission_id, "cancelled", "test")
    store.close()
    return ids


def test_status_shows_counts_of_all_and_the_most_recent_rows(run_cli, tmp_path):
    ids = _store_of(tmp_path / "many", 30)
    done = run_cli("status", "--store", tmp_path / "many")
    assert done.returncode == 0, done.stderr
    assert "(30 missions: 20 pending, 10 cancelled)" in done.stdout
    shown = listed_ids(done.stdout)
    assert shown == [pg_short(i) for i in ids[-20:]]  # the 20 newest, newest last
    assert "the 20 most recent of 30 missions" in done.stdout

    five = run_cli("status", "-n", "5", "--store", tmp_path / "many")
    assert listed_ids(five.stdout) == [pg_short(i) for i in ids[-5:]]
    assert "(30 missions: 20 pending, 10 cancelled)" in five.stdout

    everything = run_cli("status", "--all", "--store", tmp_path / "many")
    assert listed_ids(everything.stdout) == [pg_short(i) for i in ids]
    assert "most recent" not in everything.stdout


def pg_short(mission_id: str) -> str:
    return mission_id.rpartition("_")[2]


def listed_ids(text: str) -> list[str]:
    """The short ids of the status lines (any mark, pending ones have none)."""
    return re.findall(r"^.\s([0-9a-f]{8})\s+goal number", text, re.M)


def test_demo_reports_a_cancel_from_another_process_as_such(tmp_path):
    """`mission-widgets cancel` from a second terminal: the demo says who cancelled, exit 0."""
    proc, store = start_hanging_demo(tmp_path, "two-terminals")
    try:
        hang = wait_for(lambda: started_hang(store), 30, "the [hang] mission to start")
        cancel = subprocess.run(
            [sys.executable, "-m", "mission_widgets", "cancel", hang["id"], "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(tmp_path),
        )
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "UNEXPECTED" not in out
    assert f"{pg_short(hang['id'])} was cancelled from another process" in out
    assert not worker_processes(store.resolve())
