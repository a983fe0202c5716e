"""Fixtures shared by every test folder: orchestrators on the test's own store, and a guard
that no worker process outlives a test.

Every orchestrator of a test uses a store under the test's ``tmp_path`` (never the default
store), so the guard recognises the test's workers by their command line. Helpers are in
the ``support`` package next to this file (``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from support.stores import small_tmpfs
from support.waiting import check_no_worker_left

from mission_widgets import MissionOrchestrator


@pytest.fixture
def no_worker_left(tmp_path):
    """After the test: no worker process of a store under its ``tmp_path`` may still run
    (waited for with a deadline; stragglers are killed, by pid, and fail the test)."""
    yield
    check_no_worker_left(str(tmp_path.resolve()) + os.sep)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, a disk a test can fill (skips, saying why, without root)."""
    with small_tmpfs(tmp_path / "small-disk", "4m") as mount:
        yield mount


@pytest.fixture
def store_dir(tmp_path) -> Path:
    """The store that ``orchestrators`` uses unless given ``store=``."""
    return tmp_path / "store"


class Orchestrators:
    """``orchestrators(max_concurrent=2, **options)`` makes a MissionOrchestrator on the
    test's store (``store=`` picks another); at teardown cancels what they all still run
    and closes them."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.made: list[MissionOrchestrator] = []

    def __call__(self, max_concurrent: int = 2, **options: Any) -> MissionOrchestrator:
        options.setdefault("store", self.store_dir)
        return self.track(MissionOrchestrator(max_concurrent, **options))

    def track(self, orchestrator: MissionOrchestrator) -> MissionOrchestrator:
        """Clean up ``orchestrator`` (made some other way, e.g. a clone) with the others."""
        self.made.append(orchestrator)
        return orchestrator

    def cleanup(self) -> None:
        """Cancel and close every orchestrator made so far (safe to call again)."""
        while self.made:
            orchestrator = self.made.pop(0)
            orchestrator.cancel_all()
            orchestrator.close()


@pytest.fixture
def orchestrators(store_dir, no_worker_left):
    made = Orchestrators(store_dir)
    yield made
    made.cleanup()  # before no_worker_left checks (it was set up first)


@pytest.fixture
def fresh_prices():
    """Prices registered by a test are gone after it (the shipped defaults stay)."""
    from mission_widgets.core import cost

    saved = dict(cost._registered)
    cost._registered.clear()
    yield
    cost._registered.clear()
    cost._registered.update(saved)
