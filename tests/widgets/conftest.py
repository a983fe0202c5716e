"""Fixtures for panel tests: orchestrators on temporary stores, condition waits."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from mission_widgets import MissionOrchestrator


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.02)


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
