"""A worker that cannot import a module the mission refers to says so -- "could not import
module X", with the worker's sys.path and cwd -- instead of calling the mission file corrupt."""

from __future__ import annotations

import importlib
import sys


def test_a_module_the_worker_cannot_import_is_named(orchestrators, tmp_path, monkeypatch):
    local = tmp_path / "notebook_dir"
    local.mkdir()
    (local / "local_steps.py").write_text("def work(task, session, context):\n    return 1\n")
    monkeypatch.syspath_prepend(str(local))
    module = importlib.import_module("local_steps")
    from mission_widgets import Mission, MissionStep

    orch = orchestrators(2)
    mission = Mission("g", steps=[MissionStep("s", "s", module.work)])
    orch.submit(mission)
    # The notebook moved on (os.chdir, a path entry gone): the worker will not find it.
    monkeypatch.syspath_prepend(str(tmp_path))  # something stays first on the path
    sys.path.remove(str(local))
    (local / "local_steps.py").unlink()
    ended = orch.run_all()[0]
    assert ended.status == "failed"
    assert "could not import module 'local_steps'" in ended.error
    assert "sys.path" in ended.error and "cwd" in ended.error
    assert "corrupt" not in ended.error
    sys.modules.pop("local_steps", None)
