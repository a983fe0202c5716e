"""Safe stores that scale, each case as an operator meets it, end to end through the public
API with real files, stores and processes: private permissions, refused ids and paths,
bounded plans and parallel pools, large goals and results summarised, never loaded to attach."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest
from support.executors import BigResult
from support.stores import child_env, needs_root, run_python

from mission_widgets import Mission, MissionOrchestrator, MissionStep, MissionValidationError
from mission_widgets.runtime.store import StoreError

BIG = 2 * 1024 * 1024  # over the 1 MiB threshold


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


class RunsCode:
    """Unpickling it creates the directory ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def every_path(root):
    for folder, dirs, files in os.walk(root):
        yield folder
        for name in dirs + files:
            yield os.path.join(folder, name)


# -- 15.1 private stores -------------------------------------------------------------------------


def test_a_world_writable_store_whose_state_holds_a_pickle_is_refused_before_loading_it(
    tmp_path, orchestrators
):
    """Seen: a 0777 store with a 0666 store.sqlite whose final state held a pickled result
    was opened and ran that pickle. Now: StoreError saying why and how, modes unchanged."""
    marker = str(tmp_path / "pickle-ran")
    store_dir = tmp_path / "shared"
    orch = orchestrators(1, store=store_dir, backend="thread")
    mission = Mission("g", steps=[MissionStep("s", "s", executor=lambda t, s, c: RunsCode(marker))])
    assert orch.run_async(mission).wait(timeout=60).status == "succeeded"
    orch.close()
    assert not os.path.exists(marker)
    os.chmod(store_dir, 0o777)
    os.chmod(store_dir / "store.sqlite", 0o666)

    with pytest.raises(StoreError) as caught:
        MissionOrchestrator(store=store_dir)
    message = str(caught.value)
    assert str(store_dir) in message and "writable by group or others" in message
    assert "chmod" in message  # how to fix it
    assert not os.path.exists(marker)
    assert mode(store_dir) == 0o777 and mode(store_dir / "store.sqlite") == 0o666

    # Control: made private again, the same store opens and the pickle does load when the
    # result is asked for (so the refusal above is what kept it from running).
    os.chmod(store_dir, 0o700)
    os.chmod(store_dir / "store.sqlite", 0o600)
    again = orchestrators(1, store=store_dir, backend="thread")
    again.get(mission.id).steps[0].result  # noqa: B018 - reading it unpickles it
    assert os.path.exists(marker)


@needs_root
def test_another_user_opening_my_readable_store_is_refused_before_any_pickle_is_loaded(
    orchestrators,
):
    """The second user of the issue, for real (setpriv): root's store, made readable to all
    (0755 / 0644) with a queued mission whose payload runs code when unpickled, opened by
    user nobody: StoreError naming the owner, and the payload never ran."""
    top = tempfile.mkdtemp(prefix="mw-accept2-")
    try:
        os.chmod(top, 0o777)
        root = os.path.join(top, "store")
        marker = os.path.join(top, "pickle-ran")
        orch = orchestrators(1, store=root)
        orch.store.register("planted", "innocent", backend="subprocess", owner=None)
        with open(orch.store.mission_file("planted"), "wb") as handle:
            pickle.dump(RunsCode(marker), handle)
        orch.close()
        for path in every_path(root):
            os.chmod(path, 0o755 if os.path.isdir(path) else 0o644)
        done = run_python(
            """
            import sys
            from mission_widgets import MissionOrchestrator
            from mission_widgets.runtime.store import StoreError
            try:
                MissionOrchestrator(store=sys.argv[1], max_concurrent=1)
            except StoreError as exc:
                print("refused:", exc)
            """,
            root,
            as_nobody=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("refused:") and "owned by" in done.stdout, done.stdout
        assert not os.path.exists(marker)
        # Control: the same code as root (the owner; files made private again) loads it.
        for path in every_path(root):
            os.chmod(path, 0o700 if os.path.isdir(path) else 0o600)
        orchestrators(1, store=root).close()
        assert os.path.exists(marker)
    finally:
        shutil.rmtree(top)


def test_a_store_made_under_umask_0_by_real_workers_is_0700_with_every_file_0600(
    tmp_path, orchestrators
):
    """Seen: new -wal / -shm files were created 0666. Under umask 0 (the worst case, inherited
    by the worker processes) every directory is 0700 and every file 0600."""
    old = os.umask(0)
    try:
        orch = orchestrators(2)
        missions = [
            Mission(f"g{i}", steps=[MissionStep("s", "s", executor=BigResult(BIG))])
            for i in range(2)
        ]
        for mission in missions:
            assert orch.run_async(mission).wait(timeout=120).status == "succeeded"
        root = orch.store.root
        names = {os.path.basename(p) for p in every_path(root)}
        assert {"store.sqlite-wal", "store.sqlite-shm"} <= names
        assert any(name.endswith(".large") for name in names)  # the big results' folders
        assert any(name.endswith(".log") for name in names)
        for path in every_path(root):
            wanted = 0o700 if os.path.isdir(path) else 0o600
            assert mode(path) == wanted, (path, oct(mode(path)))
    finally:
        os.umask(old)


def test_an_existing_directory_given_as_a_relative_store_is_refused_and_untouched(
    tmp_path, monkeypatch
):
    """Seen: from a/b, store="../../etc" turned a 0755 directory into 0700 and added files."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    os.chmod(etc, 0o755)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    with pytest.raises(StoreError, match="not a mission store"):
        MissionOrchestrator(store="../../etc")
    assert mode(etc) == 0o755
    assert os.listdir(etc) == ["hosts"]
    assert os.listdir(tmp_path / "a" / "b") == []


@pytest.mark.parametrize("given", ["", "."])
def test_an_empty_store_name_or_the_working_directory_is_an_error(tmp_path, monkeypatch, given):
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises((StoreError, ValueError)):
        MissionOrchestrator(store=given)
    assert os.listdir(tmp_path) == ["notes.txt"]


# -- 15.2 mission ids are names -----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../../escaped", "/tmp/abs-mission", ".hidden", "a/b"])
def test_a_path_as_mission_id_is_refused_everywhere_and_nothing_is_written(
    tmp_path, monkeypatch, orchestrators, bad
):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    with pytest.raises(MissionValidationError) as caught:
        Mission("g", mission_id=bad)
    assert repr(bad) in str(caught.value)

    mission = Mission("g", steps=[MissionStep("s", "s", executor=lambda t, s, c: 1)])
    with pytest.raises(MissionValidationError, match=repr(bad)):
        mission.id = bad  # set later, before submit: refused all the same
    orch = orchestrators(1)
    with pytest.raises(MissionValidationError, match=repr(bad)):
        orch.store.register(bad, "g", backend="subprocess", owner=None)
    with pytest.raises(MissionValidationError):
        orch.store.log_file(bad)
    orch.submit(mission)  # the untouched, valid id still works
    assert orch.run_all()[0].status == "succeeded"
    outside = {
        p
        for p in every_path(tmp_path)
        if not p.startswith(str(orch.store.root)) and os.path.isfile(p)
    }
    assert outside == set()
    assert not os.path.exists("/tmp/abs-mission.pkl")


def test_a_store_row_with_a_path_as_id_is_refused_on_attach_and_writes_nothing(
    tmp_path, orchestrators
):
    """Ids entering from store rows (a database written by something else) are checked too:
    the row is named in a warning, no file is made from it, the store stays usable."""
    import sqlite3
    import time

    root = tmp_path / "store"
    orchestrators(1, store=root).close()
    with sqlite3.connect(root / "store.sqlite") as conn:
        conn.execute(
            "INSERT INTO missions (id, goal, status, submitted_at) VALUES (?, 'g', 'pending', ?)",
            ("../../evil", time.time()),
        )
    conn.close()
    with pytest.warns(RuntimeWarning, match=r"\.\./\.\./evil"):
        orch = orchestrators(1, store=root, backend="thread")
    mission = Mission("fine", steps=[MissionStep("s", "s", executor=lambda t, s, c: 1)])
    assert orch.run_async(mission).wait(timeout=60).status == "succeeded"
    made = {p for p in every_path(tmp_path) if os.path.isfile(p)}
    assert made and all(p.startswith(str(root) + os.sep) for p in made)
    assert not any("evil" in os.path.basename(p) for p in made)


@pytest.mark.parametrize("bad", [5, "../../escaped", "/etc/passwd"])
def test_mission_load_of_a_file_with_a_bad_id_is_a_validation_error_naming_it(tmp_path, bad):
    path = tmp_path / "saved.json"
    Mission("g", steps=[MissionStep("s", "s")]).save(path)
    data = json.loads(path.read_text())
    data["id"] = bad
    path.write_text(json.dumps(data))
    with pytest.raises(MissionValidationError) as caught:
        Mission.load(path)
    assert repr(bad) in str(caught.value) and str(path) in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ["saved.json"]


def test_a_pickled_mission_with_a_bad_id_is_refused_when_unpickled():
    mission = Mission("g", mission_id="fine")
    state = pickle.dumps(mission).replace(b"fine", b"/etc")
    with pytest.raises(MissionValidationError, match="/etc"):
        pickle.loads(state)


# -- 15.4 bounds -------------------------------------------------------------------------------


def test_a_plan_over_the_limit_fails_at_once_naming_it_in_status(orchestrators):
    plan = json.dumps([{"id": f"s{i}", "description": "x"} for i in range(10_000)])
    orch = orchestrators(1, backend="thread")
    mission = Mission("plan a lot", model=lambda prompt: plan, executor=lambda t, s, c: 1)
    done = orch.run_async(mission).wait(timeout=60)
    assert done.status == "failed"
    assert "100" in done.error and "10000" in done.error  # the limit and what was asked
    row = orch.status().set_index("id").loc[mission.id]
    assert row["status"] == "failed" and "100" in row["error"]
    assert row["n_done"] == 0


def test_two_thousand_ready_parallel_steps_run_on_a_bounded_pool():
    """Seen: 2,000 parallel steps ran on 2,002 threads."""
    most = [0]
    lock = threading.Lock()

    def work(task, session, context):
        with lock:
            most[0] = max(most[0], threading.active_count())
        return task

    steps = [MissionStep(f"p{i}", "x", executor=work, parallel=True) for i in range(2000)]
    before = threading.active_count()
    mission = Mission("fan out", steps=steps, max_steps=2000).run()
    assert mission.status == "succeeded"
    assert mission.max_parallel <= 32
    assert most[0] <= before + mission.max_parallel + 1


def test_a_large_result_is_summarised_in_status_and_the_panel_without_being_loaded(
    orchestrators,
):
    from mission_widgets import MissionPanel

    orch = orchestrators(1)
    mission = Mission("big", steps=[MissionStep("huge", "make it big", executor=BigResult(BIG))])
    assert orch.run_async(mission).wait(timeout=120).status == "succeeded"
    # Stored once: one file holds it; the database (rows, events, final states) does not.
    big_files = [p for p in every_path(orch.store.root) if os.path.getsize(p) >= BIG]
    assert len(big_files) == 1 and ".large" in big_files[0], big_files
    frame = orch.status().set_index("id")
    summary = frame.loc[mission.id, "result_summary"]
    assert "huge" in summary and f"{BIG + 2:,} bytes" in summary  # JSON quotes: 2 more
    assert len(summary) < 1000
    step = orch.get(mission.id).steps[0]
    assert step.stored_result().__class__.__name__ == "LargeValue"  # not loaded by status()

    panel = MissionPanel(orch, auto_refresh=False)
    try:
        details = panel.details_html(mission.id)
        assert "Large results" in details and f"{BIG + 2:,} bytes" in details
        assert len(details) < 20_000
        assert step.stored_result().__class__.__name__ == "LargeValue"  # still not loaded
    finally:
        panel.close()
    assert step.result == "z" * BIG  # read when asked for


def test_a_large_goal_is_stored_once_and_summarised_in_status(orchestrators):
    from support.executors import noop

    orch = orchestrators(1)
    goal = "plan " + "g" * BIG
    mission = Mission(goal, steps=[MissionStep("s", "s", executor=noop)])
    done = orch.run_async(mission).wait(timeout=120)
    assert done.status == "succeeded" and mission.goal == goal
    big_files = [p for p in every_path(orch.store.root) if os.path.getsize(p) >= BIG]
    assert len(big_files) == 1 and ".large" in big_files[0], big_files  # not in the payload too
    shown = orch.status().set_index("id").loc[mission.id, "goal"]
    assert shown.startswith("plan ggg") and f"{len(goal):,} bytes" in shown and len(shown) < 1000
    resumed = Mission.load(orch.store.checkpoint_file(mission.id))
    assert resumed.goal == goal  # read from its file when asked for


ATTACH = """
import os, sys
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and ".large" in args[0]:
        opened.append(args[0])
sys.addaudithook(hook)
from mission_widgets import MissionOrchestrator
orch = MissionOrchestrator(store=sys.argv[1])
frame = orch.status()
summary = frame.set_index("id").loc[sys.argv[2], "result_summary"]
mission = orch.get(sys.argv[2])
print("attach", len(opened), summary is not None, mission.status)
mission.steps[0].result
print("asked", len(opened))
orch.close()
"""


def test_a_new_orchestrator_never_opens_a_large_result_to_attach(orchestrators, store_dir):
    orch = orchestrators(1)
    mission = Mission("big", steps=[MissionStep("huge", "x", executor=BigResult(BIG))])
    assert orch.run_async(mission).wait(timeout=120).status == "succeeded"
    orch.close()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(ATTACH), str(store_dir), mission.id],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert done.returncode == 0, done.stderr
    attach, asked = done.stdout.splitlines()
    assert attach == "attach 0 True succeeded"  # no large file opened to attach or status()
    assert asked != "asked 0"  # the control: reading the result does open it
