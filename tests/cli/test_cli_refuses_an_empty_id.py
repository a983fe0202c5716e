"""An empty mission id is refused by name (it would match every mission), not answered
with "'' matches 10 missions"."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("command", ["cancel", "decide"])
@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_mission_id_is_refused(run_cli, tmp_path, command, text):
    store = tmp_path / "s"
    assert run_cli("demo", "-n", "2", "--model", "demo:fast", "--store", store).returncode == 0
    args = [command, text, *(["skip"] if command == "decide" else []), "--store", store]
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert "the mission id is empty" in done.stderr
    assert "matches" not in done.stderr
