"""SharedSession: memory, thread safety, atomic checkpoints and restore."""

from __future__ import annotations

import json
import os
import pickle
import threading

import pytest

from mission_widgets import CheckpointError, SharedSession


def test_memory_set_get_and_default():
    session = SharedSession(model="demo:fast")
    assert session.model == "demo:fast"
    assert session.get_memory("missing") is None
    assert session.get_memory("missing", 5) == 5
    session.set_memory("k", [1, 2])
    assert session.get_memory("k") == [1, 2]
    assert "k" in session
    assert len(session) == 1


@pytest.mark.parametrize("key", ["", None, 3])
def test_memory_keys_must_be_non_empty_strings(key):
    with pytest.raises(TypeError, match="key"):
        SharedSession().set_memory(key, 1)


def test_set_and_get_are_thread_safe_under_many_threads():
    session = SharedSession()
    n_threads, n_keys = 16, 300
    barrier = threading.Barrier(n_threads + 1, timeout=10)
    errors = []

    def writer(t):
        try:
            barrier.wait()
            for i in range(n_keys):
                session.set_memory(f"t{t}_k{i}", (t, i))
                session.set_memory("shared", t)
                assert session.get_memory(f"t{t}_k{i}") == (t, i)
        except BaseException as exc:
            errors.append(exc)

    def reader():
        # copies of the whole memory are taken while the writers change it
        try:
            barrier.wait()
            for _ in range(20):
                session.json_memory()
                session.memory()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert errors == []
    memory = session.memory()
    assert len(memory) == n_threads * n_keys + 1
    assert memory["shared"] in range(n_threads)
    assert all(memory[f"t{t}_k{i}"] == (t, i) for t in range(n_threads) for i in range(n_keys))


def test_checkpoint_writes_valid_json_atomically(tmp_path):
    session = SharedSession(model="demo:fast")
    session.set_memory("numbers", [1, 2, 3])
    session.set_memory("name", "Ada")
    path = tmp_path / "session.json"
    assert session.checkpoint(path) == os.fspath(path)
    assert os.listdir(tmp_path) == ["session.json"]  # no temp file left behind
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["memory"] == {"numbers": [1, 2, 3], "name": "Ada"}
    assert data["model"] == "demo:fast"


def test_checkpoint_while_other_threads_write(tmp_path):
    session = SharedSession()
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        while not stop.is_set():
            session.set_memory(f"k{i % 500}", i)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(10):
            try:
                session.checkpoint(tmp_path / "s.json")
            except Exception as exc:
                errors.append(exc)
            json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    finally:
        stop.set()
        thread.join(10)
    assert errors == []
    assert os.listdir(tmp_path) == ["s.json"]


def test_restore_checkpoint(tmp_path):
    original = SharedSession(model="demo:fast")
    original.set_memory("a", {"nested": [1, None, "x"]})
    path = original.checkpoint(tmp_path / "nested" / "dir" / "s.json")
    restored = SharedSession()
    assert restored.restore_checkpoint(path) is restored
    assert restored.memory() == {"a": {"nested": [1, None, "x"]}}
    assert restored.model == "demo:fast"
    # restoring replaces the memory
    other = SharedSession(model="mine:model")
    other.set_memory("old", 1)
    other.restore_checkpoint(path)
    assert other.memory() == {"a": {"nested": [1, None, "x"]}}
    assert other.model == "mine:model"


def test_non_json_value_names_the_key_and_keeps_the_old_checkpoint(tmp_path):
    session = SharedSession()
    session.set_memory("good", 1)
    path = tmp_path / "s.json"
    session.checkpoint(path)
    before = path.read_bytes()
    session.set_memory("socket", object())
    with pytest.raises(TypeError, match="'socket'"):
        session.checkpoint(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["s.json"]


@pytest.mark.parametrize(
    "content",
    ['{"format": "mission_widgets.session", "memory": {"a": 1', "not json at all", "", "[1, 2]"],
)
def test_corrupt_checkpoint_names_the_file(tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    session = SharedSession()
    session.set_memory("kept", True)
    with pytest.raises(CheckpointError, match="broken.json"):
        session.restore_checkpoint(path)
    assert session.memory() == {"kept": True}


def test_checkpoint_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something.else", "memory": {}}), encoding="utf-8")
    with pytest.raises(CheckpointError, match="other.json"):
        SharedSession().restore_checkpoint(path)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.json"):
        SharedSession().restore_checkpoint(tmp_path / "nope.json")


def test_session_pickles_without_its_lock():
    session = SharedSession(model="demo")
    session.set_memory("x", 1)
    copy = pickle.loads(pickle.dumps(session))
    assert copy.memory() == {"x": 1}
    assert copy.model == "demo"
    copy.set_memory("y", 2)  # the copy has a working lock
    assert "y" not in session
