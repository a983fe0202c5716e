"""The runtime tests start worker processes: none may outlive a test (the guard and the
``orchestrators`` fixture are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _guard(no_worker_left):
    """Every runtime test is guarded, also one that starts workers without ``orchestrators``."""
