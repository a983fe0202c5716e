"""The notebook's own store, in a real Jupyter kernel: a kernel started for a
notebook (JPY_SESSION_NAME, as Jupyter Server sets it) stores there by default; a restarted
kernel of the same notebook reattaches; another notebook's kernel sees none of it."""

from __future__ import annotations

import json

import nbformat
from support.kernel import KernelSession, text_output

RUN_ONE = """
import json
from mission_widgets import Mission, MissionOrchestrator, MissionStep
orch = MissionOrchestrator(backend="thread")
mission = Mission("hello", steps=[MissionStep("s", "answer", executor=lambda t, s, c: 42)])
orch.run_async(mission).wait(timeout=60)
print(json.dumps([str(orch.store.root), orch.store.reason, mission.id, str(mission.status)]))
orch.close()
"""

LIST = """
import json
from mission_widgets import MissionOrchestrator
orch = MissionOrchestrator(backend="thread")
print(json.dumps([str(orch.store.root), orch.status()["id"].tolist()]))
orch.close()
"""


def _in_kernel(tmp_path, name, source):
    work = tmp_path / name
    work.mkdir(exist_ok=True)
    session = KernelSession(nbformat.v4.new_notebook(), work)
    with session.started():
        cell, _ = session.run_source(source)
    return json.loads(text_output(cell).strip().splitlines()[-1])


def test_each_notebook_has_its_own_store_and_a_restart_reattaches(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("MISSION_WIDGETS_STORE", raising=False)
    lesson = tmp_path / "course" / "lesson.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(lesson))
    root, reason, mission_id, status = _in_kernel(tmp_path, "k1", RUN_ONE)
    assert status == "succeeded"
    assert root.startswith(str(tmp_path / "state" / "mission_widgets" / "notebooks" / "lesson-"))
    assert reason == f"the store of notebook {lesson}"

    again_root, ids = _in_kernel(tmp_path, "k2", LIST)  # the same notebook, a new kernel
    assert (again_root, ids) == (root, [mission_id])

    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "course" / "other.ipynb"))
    other_root, other_ids = _in_kernel(tmp_path, "k3", LIST)
    assert other_root != root and other_ids == []
