"""``mission-widgets status --status S``: exactly the missions in S, and "of how many" counts
the missions in S, not the whole store (checked where the two differ)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.stores import finished_row

from mission_widgets.runtime.store import MissionStore


@pytest.fixture
def mixed_store(tmp_path) -> Path:
    """5 missions: 3 succeeded, 2 failed (so no filter's count equals the total)."""
    store = MissionStore(tmp_path / "mixed")
    for i, status in enumerate(["succeeded", "failed", "succeeded", "failed", "succeeded"]):
        finished_row(store, f"mission_2026010100000{i}_0000000{i}", status)
    store.close()
    return tmp_path / "mixed"


def shown_ids(text: str) -> list[str]:
    return re.findall(r"\b0000000(\d)\b", text)


def test_status_filter_shows_exactly_the_missions_of_that_status(run_cli, mixed_store):
    done = run_cli("status", "--status", "failed", "--store", mixed_store)
    assert done.returncode == 0, done.stderr
    assert "5 missions: 3 succeeded, 2 failed" in done.stdout  # the store's counts stay
    assert shown_ids(done.stdout) == ["1", "3"]
    assert "most recent of" not in done.stdout  # both failed ones are shown: none hidden


def test_status_filter_with_a_limit_says_how_many_of_that_status_are_hidden(run_cli, mixed_store):
    done = run_cli("status", "--status", "succeeded", "-n", "2", "--store", mixed_store)
    assert done.returncode == 0, done.stderr
    assert shown_ids(done.stdout) == ["2", "4"]
    assert "(the 2 most recent of 3 succeeded missions" in done.stdout
