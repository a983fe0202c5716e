"""Which store: store= and $MISSION_WIDGETS_STORE win; in a notebook's kernel
the notebook's own store; else the documented default. And history that can be pruned."""

from __future__ import annotations

import os

import pytest
from support.stores import finished_row, run_python

from mission_widgets.runtime.store import (
    MissionStore,
    StoreError,
    describe_store_path,
    resolve_store_path,
)


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state dir of the test's own; no store chosen by the environment."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("MISSION_WIDGETS_STORE", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return tmp_path / "state" / "mission_widgets"


def test_outside_a_notebook_the_default_store(state):
    path, reason = describe_store_path(None)
    assert path == state / "default"
    assert reason == "the default store"


def test_in_a_notebook_kernel_the_notebook_has_its_own_store(state, monkeypatch, tmp_path):
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "course" / "Lesson 1.ipynb"))
    first, reason = describe_store_path(None)
    assert first.parent == state / "notebooks"
    assert first.name.startswith("Lesson_1-")
    assert "Lesson 1.ipynb" in reason
    assert resolve_store_path(None) == first  # the same notebook again: the same store
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "other" / "Lesson 1.ipynb"))
    assert resolve_store_path(None) not in (first, state / "default")


def test_store_and_environment_win_over_the_notebook(state, monkeypatch, tmp_path):
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "nb.ipynb"))
    monkeypatch.setenv("MISSION_WIDGETS_STORE", str(tmp_path / "env-store"))
    assert describe_store_path(None) == (tmp_path / "env-store", "$MISSION_WIDGETS_STORE")
    assert resolve_store_path(tmp_path / "given") == tmp_path / "given"
    assert resolve_store_path("named") == state / "named"


def test_vs_code_notebooks_are_recognised_through_ipython(state, tmp_path):
    """VS Code does not set JPY_SESSION_NAME; it puts __vsc_ipynb_file__ in the user
    namespace of an IPython shell (a real one here, in a fresh process)."""
    notebook = str(tmp_path / "analysis.ipynb")
    done = run_python(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        from mission_widgets.runtime.store import describe_store_path
        print(describe_store_path(None)[0])
        InteractiveShell.instance().user_ns["__vsc_ipynb_file__"] = sys.argv[1]
        path, reason = describe_store_path(None)
        print(path); print(reason)
        """,
        notebook,
    )
    assert done.returncode == 0, done.stderr
    before, after, reason = done.stdout.splitlines()
    assert before == str(state / "default")
    assert after.startswith(str(state / "notebooks" / "analysis-"))
    assert notebook in reason


def test_an_empty_environment_variable_is_an_error(state, monkeypatch):
    monkeypatch.setenv("MISSION_WIDGETS_STORE", "")
    assert resolve_store_path(None) == state / "default"  # unset and empty alike
    with pytest.raises(StoreError):
        resolve_store_path("")


def test_the_store_remembers_why_it_was_chosen(state, monkeypatch, tmp_path):
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "nb.ipynb"))
    store = MissionStore()
    assert store.reason == f"the store of notebook {tmp_path / 'nb.ipynb'}"
    assert store.root.parent == state / "notebooks"
    store.close()


# -- history ---------------------------------------------------------------------------------


def _files(store, mission_id):
    paths = [store.path_of(kind, mission_id) for kind in ("mission", "log", "checkpoint")]
    paths.append(store.path_of("checkpoint", mission_id) + ".journal")
    for path in paths:
        with open(path, "w") as handle:
            handle.write("x")
    large = os.path.join(os.path.dirname(paths[2]), f"{mission_id}.large")
    os.makedirs(large)
    with open(os.path.join(large, "result.bin"), "w") as handle:
        handle.write("x" * 100)
    return [*paths, large]


def test_prune_removes_finished_missions_by_age_status_and_id(store):
    finished_row(store, "old-ok", "succeeded", ago=3600)
    finished_row(store, "old-failed", "failed", ago=3600)
    finished_row(store, "new-ok", "succeeded")
    finished_row(store, "m.a", "succeeded", ago=3600)  # "m" must not take "m.a"'s files
    store.register("queued", "still waiting", backend="subprocess", owner=None)
    files = {mid: _files(store, mid) for mid in ("old-ok", "m", "m.a", "queued")}
    store.add_request("old-ok", "cancel")

    assert store.prune(older_than_secs=60, statuses=["failed"]) == ["old-failed"]
    assert store.prune(ids=["m", "queued", "new-ok"]) == ["new-ok"]  # unfinished stays
    assert store.prune(older_than_secs=60) == ["old-ok", "m.a"]
    assert [r["id"] for r in store.rows(("id",))] == ["queued"]
    assert store.events_for("old-ok") == [] and store.take_requests() == []
    for mid in ("old-ok", "m.a"):
        assert not any(os.path.exists(p) for p in files[mid]), mid
    for mid in ("m", "queued"):
        assert all(os.path.exists(p) for p in files[mid]), mid


def test_forget_takes_ids_and_leaves_running_missions(store):
    finished_row(store, "done")
    store.register("running", "goal", backend="subprocess", owner=None)
    assert store.forget(["done", "running", "unknown"]) == ["done"]
    assert store.row("done") is None and store.row("running") is not None
    assert store.forget([]) == []


# -- large values ----------------------------------------------------------------------------


def test_large_goals_and_final_states_stay_out_of_the_row(store):
    from mission_widgets.core.events import make_event

    goal = "g" * (2 << 20)
    store.register("big", goal, backend="subprocess", owner=None)
    row_goal = store.row("big")["goal"]
    assert len(row_goal) < 1000 and "2,097,152 bytes" in row_goal
    state = {"id": "big", "result": "r" * (2 << 20)}
    store.append_event(make_event("mission_done", "big", status="succeeded"), None, state)
    path = os.path.join(store.root, "checkpoints", "big.large", "state.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert store.final_state("big") == state
    records = store.status_records()[1]
    assert all(len(str(value)) < 1000 for value in records[0])
    store.register("small", "a goal", backend="subprocess", owner=None)
    assert store.row("small")["goal"] == "a goal"
    assert store.prune(ids=["big"]) == ["big"] and not os.path.exists(path)
