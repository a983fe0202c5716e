"""Upgrades keep queued work: a store made by an older release opens with this one, its
finished history reads, and its queued missions run (or are refused, naming the release that
made them, with nothing lost). Stores carry a format; a newer one is refused untouched.

The old stores are real: made by the code of an older commit of this repository (``git
archive`` into tmp, run with this venv), or, where git or the commit is unavailable, by the
checked-in copies that ``fixtures/make_old_store.py --fixture COMMIT`` made from the same
commit. Both sources are always exercised: the copy is never a silent skip.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mission_widgets.runtime.store import (
    STORE_FORMAT,
    MissionStore,
    StoreFormatError,
    check_store,
)
from mission_widgets.runtime.store_format import BEFORE_FORMATS

FIXTURES = Path(__file__).parent / "fixtures"
_spec = importlib.util.spec_from_file_location("make_old_store", FIXTURES / "make_old_store.py")
assert _spec is not None and _spec.loader is not None
make_old_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_old_store)

#: Older releases: the end of the previous landed stop (2026-12-02), and the first release
#: (2026-11-25: steps, status and progress were plain attributes then; the orchestrator a
#: module at the package root).
COMMITS = {"stop-2026-12-02": "1dd4db2", "first-release-2026-11-25": "a60c0ec"}


@pytest.fixture(
    scope="module",
    params=[(n, s) for n in COMMITS for s in ("git", "copy")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def old_store(request, tmp_path_factory):
    """(a store made by an older release, what made it): a fresh copy for each test."""
    name, source = request.param
    commit = COMMITS[name]
    made_dir = tmp_path_factory.mktemp(f"{name}-{source}")
    store = made_dir / "store"
    made = None
    if source == "git":
        try:
            made = make_old_store.build_with_commit(commit, store, made_dir / "code")
            made["source"] = f"git archive {commit}"
        except (OSError, subprocess.CalledProcessError):
            made = None  # no git or no such commit here: the checked-in copy instead
    if made is None:
        made = make_old_store.unpack_fixture(commit, store)
        made["source"] = f"fixtures/store-{commit}.tar.gz"
    os.chmod(store, 0o700)
    return store, made


def _copy(old_store, tmp_path):
    import shutil

    store, made = old_store
    target = tmp_path / "upgraded"
    shutil.copytree(store, target)
    os.chmod(target, 0o700)
    return target, made


def test_an_old_store_opens_its_history_reads_and_its_five_queued_missions_run(
    old_store, tmp_path, orchestrators
):
    root, made = _copy(old_store, tmp_path)
    finished, queued = made["finished"], made["queued"]
    assert len(queued) == 5 and len(finished) == 3, made
    orch = orchestrators(max_concurrent=5, store=root)

    table = orch.status().set_index("id")
    assert {i: table.loc[i, "status"] for i in finished} == finished, made["source"]
    assert all(table.loc[i, "status"] == "pending" for i in queued)
    for mission_id, status in finished.items():
        events = orch.store.events_for(mission_id)
        assert events[-1]["event"] == "mission_done" and events[-1]["status"] == status
    failure = next(i for i, s in finished.items() if s != "succeeded")
    assert "fails on purpose" in table.loc[failure, "error"]
    assert "old failure" in orch.timeline(list(finished)).to_svg()

    orch.start_queued()
    ended = orch.wait_all(timeout=240)
    assert sorted(m.id for m in ended) == sorted(queued)
    table = orch.status().set_index("id")
    assert [table.loc[i, "status"] for i in queued] == ["succeeded"] * 5, [
        table.loc[i, "error"] for i in queued
    ]
    assert {m.result for m in ended} == {f"done: old queued {i}, part 2" for i in range(5)}
    assert len(table) == 8  # nothing lost

    with sqlite3.connect(root / "store.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == STORE_FORMAT
    report = check_store(root)
    assert report["store_format"].startswith(f"{STORE_FORMAT} (current)")
    assert f"format 0 -> {STORE_FORMAT}" in report["store_format"]


def test_a_queued_mission_this_release_cannot_load_is_refused_by_name_and_kept(
    old_store, tmp_path, orchestrators
):
    root, made = _copy(old_store, tmp_path)
    gone = made["queued"][0]
    # A pickle of a class that no longer exists (its module gone): it cannot be run here.
    (root / "missions" / f"{gone}.pkl").write_bytes(b"cmission_widgets_gone\nMission\n)\x81.")
    orch = orchestrators(max_concurrent=5, store=root)
    orch.start_queued()
    orch.wait_all(timeout=240)
    row = orch.store.row(gone)
    assert row is not None and row["status"] == "failed"
    assert row["error"].startswith(f"refused: made by version {BEFORE_FORMATS}; resubmit it")
    assert "mission_widgets_gone" in row["error"]
    assert (root / "missions" / f"{gone}.pkl").exists()  # the file is kept beside its row
    others = orch.status().set_index("id").loc[made["queued"][1:], "status"]
    assert list(others) == ["succeeded"] * 4


def test_a_newer_store_format_is_refused_naming_path_and_versions_and_left_untouched(
    tmp_path,
):
    root = tmp_path / "store"
    MissionStore(root).close()
    db = root / "store.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute(f"PRAGMA user_version = {STORE_FORMAT + 1}")
        conn.execute("UPDATE store_info SET value = 'mission_widgets 9.0' WHERE key='created_by'")
    conn.close()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(StoreFormatError) as refused:
        MissionStore(root)
    text = str(refused.value)
    assert str(db) in text and f"store format {STORE_FORMAT + 1}" in text
    assert "mission_widgets 9.0" in text and f"formats up to {STORE_FORMAT}" in text
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    report = check_store(root)
    assert not report.ok and "newer" in report["store_format"]


def test_two_processes_opening_an_old_store_at_once_upgrade_it_once(old_store, tmp_path, spawn):
    root, _ = _copy(old_store, tmp_path)
    go = tmp_path / "go"
    code = """
        import os, sys, time
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.001)
        from mission_widgets.runtime.store import MissionStore
        MissionStore(sys.argv[1]).close()
        print("opened")
    """
    opening = [spawn(code, str(root), str(go)) for _ in range(2)]
    go.touch()
    for proc in opening:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "opened", err
    with sqlite3.connect(root / "store.sqlite") as conn:
        upgrades = dict(conn.execute("SELECT key, value FROM store_info"))["upgrades"]
    conn.close()
    assert upgrades.count("format 0 ->") == 1, upgrades


def test_a_new_store_records_its_format_and_maker(tmp_path):
    store = MissionStore(tmp_path / "store")
    store.register("m", "goal", backend="thread", owner=None)
    assert store.row("m")["made_by"] == f"mission_widgets 0.1.0 (store format {STORE_FORMAT})"
    report = check_store(tmp_path / "store")
    assert report["store_format"] == (
        f"{STORE_FORMAT} (current); created by mission_widgets 0.1.0 (store format {STORE_FORMAT})"
    )
    store.close()


def test_a_mission_pickled_before_its_newer_attributes_loads_and_runs():
    """What an older release pickled (attributes missing, properties as plain attributes)
    gets the defaults of a freshly made mission and step."""
    from mission_widgets import Mission, MissionStep

    mission = Mission(
        "old",
        steps=[{"id": "a", "description": "do a", "executor": _done}],
        auto_plan=False,
    )
    old = pickle.loads(pickle.dumps(mission))
    state = old.__getstate__()
    for key in ("max_steps", "max_parallel", "result_step", "waiting_on", "_tally", "_index"):
        state.pop(key)
    step = dict(state.pop("_steps")[0].__dict__)
    step["status"], step["progress"] = str(step.pop("_status")), step.pop("_progress")
    step["result"], step["skipped"] = step.pop("_result"), False
    for key in ("progress_high", "result_note", "last_exception", "_tally"):
        step.pop(key)
    old_step = MissionStep.__new__(MissionStep)
    old_step.__setstate__(step)
    state["steps"] = [old_step]
    revived = Mission.__new__(Mission)
    revived.__setstate__(state)
    assert revived.max_steps == mission.max_steps and revived.steps[0].status == "pending"
    assert revived.run().status == "succeeded" and revived.steps[0].result == "a done"


def _done(task, session, context):
    return "a done"
