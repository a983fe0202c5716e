"""Fixtures for panel tests: orchestrators on temporary stores, condition waits."""

from __future__ import annotations

import pytest

from mission_widgets import MissionOrchestrator


@pytest.fixture
def make_orchestrator(tmp_path):
    made: list[MissionOrchestrator] = []

    def make(**kwargs) -> MissionOrchestrator:
        kwargs.setdefault("store", tmp_path / f"store{len(made)}")
        orch = MissionOrchestrator(**kwargs)
        made.append(orch)
        return orch

    yield make
    for orch in made:
        for mission in list(orch.running):
            orch.cancel(mission.id)
        orch.close()


@pytest.fixture
def panels():
    opened = []
    yield opened
    for panel in opened:
        panel.close()
