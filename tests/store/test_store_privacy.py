"""Stores are private: created 0700/0600, others' or writable stores refused
before anything in them is read, directories that are not stores never taken over."""

from __future__ import annotations

import os
import pickle
import stat

import pytest
from support.stores import NOBODY, needs_root, run_python

from mission_widgets import MissionOrchestrator
from mission_widgets.core.events import make_event
from mission_widgets.runtime.store import MissionStore, StoreError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_store_and_every_file_in_it_are_private(tmp_path):
    store = MissionStore(tmp_path / "s")
    store.register("m1", "goal", backend="subprocess", owner=None)
    store.append_event(make_event("mission_start", "m1"), {"status": "running"})
    root = store.root
    assert (root / "store.sqlite-wal").exists() and (root / "store.sqlite-shm").exists()
    for sub in ("", "missions", "logs", "checkpoints"):
        assert mode(root / sub) == 0o700, sub
    for name in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm"):
        assert mode(root / name) == 0o600, name
    store.close()


def test_an_existing_empty_directory_becomes_private(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir(mode=0o755)
    MissionStore(folder).close()
    assert mode(folder) == 0o700


@pytest.mark.parametrize("who", ["others", "group"])
@pytest.mark.parametrize("target", ["store.sqlite", "", "missions"])
def test_a_store_others_can_write_is_refused_and_left_alone(tmp_path, who, target):
    MissionStore(tmp_path / "s").close()
    path = tmp_path / "s" / target
    bits = stat.S_IWOTH if who == "others" else stat.S_IWGRP
    os.chmod(path, mode(path) | bits)
    before = mode(path)
    with pytest.raises(StoreError) as caught:
        MissionStore(tmp_path / "s")
    message = str(caught.value)
    assert str(path).rstrip("/") in message and "writable by group or others" in message
    assert "chmod -R go-w" in message  # how to fix it
    assert mode(path) == before  # refused, not silently "fixed"


def _plant_pickle(root, marker) -> None:
    """A queued mission whose mission file runs code when unpickled (writes ``marker``)."""

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    store = MissionStore(root)
    store.register("planted", "innocent goal", backend="subprocess", owner=None)
    store.close()
    with open(store.path_of("mission", "planted"), "wb") as handle:
        pickle.dump(Payload(), handle)


def _chown_tree(root, uid) -> None:
    for folder, dirs, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.chown(name, uid, uid)


@needs_root
def test_a_store_of_another_user_is_refused_before_any_pickle_is_read(tmp_path, no_worker_left):
    marker = tmp_path / "pickle-ran"
    _plant_pickle(tmp_path / "s", marker)
    _chown_tree(tmp_path / "s", NOBODY)
    with pytest.raises(StoreError) as caught:
        MissionOrchestrator(store=tmp_path / "s")
    assert "owned by" in str(caught.value) and "uid 65534" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not marker.exists()
    # The control: the very same store, once it is ours, is adopted and its pickle loaded.
    # (So the refusal above is what kept the pickle from running.)
    _chown_tree(tmp_path / "s", os.geteuid())
    orch = MissionOrchestrator(store=tmp_path / "s")
    try:
        assert marker.exists()
    finally:
        orch.close()


def test_a_store_created_by_another_user_is_refused(nobody_dir):
    parent = nobody_dir
    made = run_python(
        "import sys; from mission_widgets.runtime.store import MissionStore;"
        " MissionStore(sys.argv[1]).close()",
        str(parent / "theirs"),
        as_nobody=True,
    )
    assert made.returncode == 0, made.stderr
    assert os.stat(parent / "theirs" / "store.sqlite").st_uid == NOBODY
    with pytest.raises(StoreError, match="owned by"):
        MissionStore(parent / "theirs")


def test_a_non_empty_directory_that_is_not_a_store_is_never_taken_over(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir(mode=0o755)
    (folder / "passwd").write_text("root:x:0:0")
    os.chmod(folder, 0o755)
    with pytest.raises(StoreError, match="not a mission store"):
        MissionStore(folder)
    assert mode(folder) == 0o755
    assert sorted(os.listdir(folder)) == ["passwd"]


def test_relative_path_to_an_existing_directory_is_refused(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text("x")
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    with pytest.raises(StoreError, match="not a mission store"):
        MissionStore("../../etc")
    assert os.listdir(tmp_path / "etc") == ["hosts"]


@pytest.mark.parametrize("given", ["", "  ", ".", "./"])
def test_empty_store_names_and_the_working_directory_are_errors(tmp_path, monkeypatch, given):
    monkeypatch.chdir(tmp_path)  # empty: refused all the same
    with pytest.raises(StoreError, match="store="):
        MissionStore(given)
    with pytest.raises(ValueError):  # a bad argument, also as a ValueError
        MissionStore(given)
    assert os.listdir(tmp_path) == []


def test_the_working_directory_may_be_given_when_it_is_a_store(tmp_path, monkeypatch):
    MissionStore(tmp_path / "s").close()
    monkeypatch.chdir(tmp_path / "s")
    assert MissionStore(".").root == tmp_path / "s"


def test_a_path_that_is_a_file_is_one_clear_line(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(StoreError) as caught:
        MissionStore(target)
    assert str(caught.value) == f"mission store {target} is a file, not a store directory"
    assert target.read_text() == "keep me"
