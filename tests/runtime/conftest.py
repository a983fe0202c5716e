"""Fixtures of the runtime tests: orchestrators on a private store, and a guard that no
worker process outlives a test.

Every orchestrator of a test uses a store under the test's ``tmp_path`` (never the default
store), so the guard can recognise the test's workers by their command line.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mission_widgets import MissionOrchestrator

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helpers and executors import here and in workers
    sys.path.insert(0, str(HERE))

from runtime_helpers import is_alive, kill_hard, worker_processes  # noqa: E402

# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_worker_left(tmp_path):
    """After each test: no worker process of this test's stores may still run."""
    yield
    marker = str(tmp_path.resolve()) + os.sep
    deadline = time.monotonic() + 10.0
    stray = worker_processes(marker)
    while stray and time.monotonic() < deadline:  # a finished worker may still be exiting
        time.sleep(0.05)
        stray = [p for p in stray if is_alive(p)]
    if stray:
        described = [f"{p.pid}: {' '.join(p.cmdline())}" for p in stray if is_alive(p)]
        kill_hard(stray)
        pytest.fail(f"worker processes outlived the test: {described}")


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


class Orchestrators:
    """Makes orchestrators on the test's store; at teardown cancels what they still run."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.made: list[MissionOrchestrator] = []

    def __call__(self, max_concurrent: int = 2, **options: Any) -> MissionOrchestrator:
        options.setdefault("store", self.store_dir)
        return self.track(MissionOrchestrator(max_concurrent, **options))

    def track(self, orchestrator: MissionOrchestrator) -> MissionOrchestrator:
        self.made.append(orchestrator)
        return orchestrator

    def cleanup(self) -> None:
        for orchestrator in self.made:
            orchestrator.cancel_all()
            orchestrator.close()


@pytest.fixture
def orchestrators(store_dir, no_worker_left):
    made = Orchestrators(store_dir)
    yield made
    made.cleanup()
