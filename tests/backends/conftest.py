"""Fixtures of the backend tests: a store of the test's own and backends used directly,
without an orchestrator (what the CLI and the panel do)."""

from __future__ import annotations

import pytest

from mission_widgets.core.mission import Mission
from mission_widgets.runtime.backend import Backend
from mission_widgets.runtime.processes import owner_token
from mission_widgets.runtime.registry import make_backend
from mission_widgets.runtime.store import MissionStore


class Launcher:
    """``launch(mission, backend="subprocess")`` registers and starts a mission on a backend
    of its own; teardown stops whatever still runs."""

    def __init__(self, store: MissionStore) -> None:
        self.store = store
        self.started: list[tuple[Backend, str]] = []

    def __call__(self, mission: Mission, backend: str = "subprocess") -> Backend:
        runner = make_backend(backend, self.store, lambda mission_id: None)
        self.store.register(mission.id, mission.goal, backend=runner.name, owner=owner_token())
        runner.check(mission)
        runner.launch(mission, 0.5)
        self.started.append((runner, mission.id))
        return runner

    def row(self, mission_id: str) -> dict:
        row = self.store.row(mission_id)
        assert row is not None, f"no row for {mission_id}"
        return row

    def cleanup(self) -> None:
        for runner, mission_id in self.started:
            row = self.store.row(mission_id)
            if row is not None and runner.is_alive(row) and runner.can_cancel_here(row):
                runner.stop(row, 2.0)
            runner.shutdown()


@pytest.fixture
def store(store_dir) -> MissionStore:
    made = MissionStore(store_dir)
    yield made
    made.close()


@pytest.fixture
def launch(store, no_worker_left):
    launcher = Launcher(store)
    yield launcher
    launcher.cleanup()
