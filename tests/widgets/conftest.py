"""Fixtures for panel tests: panels closed at teardown (orchestrators come from the
``orchestrators`` fixture of tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def panels():
    opened = []
    yield opened
    for panel in opened:
        panel.close()
