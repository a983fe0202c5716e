"""Hostile files in a store: a symbolic link in place of ``store.sqlite`` or one of its
folders is refused, a link planted where a mission's file is written is not followed, and
``store check`` reads every checkpoint (a corrupt one makes the report say so)."""

from __future__ import annotations

import json
import os

import pytest
from support.executors import noop
from support.stores import finished_row

from mission_widgets import Mission, MissionOrchestrator, MissionStep
from mission_widgets.runtime.store import MissionStore, StoreError, check_store


@pytest.mark.parametrize("inside", ["store.sqlite", "logs", "missions", "checkpoints"])
def test_a_link_in_place_of_the_database_or_a_folder_is_refused(tmp_path, inside):
    root = tmp_path / "store"
    MissionStore(root).close()
    target = tmp_path / f"elsewhere-{inside}"
    os.rename(root / inside, target)
    os.symlink(target, root / inside)
    with pytest.raises(StoreError, match=rf"{inside} is a symbolic link"):
        MissionStore(root)


def test_a_link_planted_where_a_mission_file_is_written_is_not_followed(tmp_path):
    root = tmp_path / "store"
    orch = MissionOrchestrator(2, store=root)
    try:
        outside = tmp_path / "outside.txt"
        outside.write_text("precious")
        mission = Mission("g", steps=[MissionStep("s", "s", noop)], mission_id="planted")
        os.symlink(outside, root / "missions" / "planted.pkl.tmp")
        with pytest.raises(OSError):
            orch.submit(mission)
        assert outside.read_text() == "precious"
        assert orch.store.row("planted") is None  # and nothing stays of the submit
    finally:
        orch.close()


def test_store_check_reads_every_checkpoint(tmp_path):
    store = MissionStore(tmp_path / "store")
    for name in ("good", "bad1", "bad2"):
        finished_row(store, name)
        (store.checkpoints_dir / f"{name}.json").write_text(
            json.dumps({"goal": "g", "status": "succeeded", "steps": []})
        )
    (store.checkpoints_dir / "bad1.json").write_text("{ not json")
    (store.checkpoints_dir / "bad2.json").write_text(json.dumps(["not", "a", "state"]))
    report = check_store(store.root)
    assert not report.ok
    assert [line.split(":")[0] for line in report["corrupt_checkpoints"]] == [
        str(store.checkpoints_dir / "bad1.json"),
        str(store.checkpoints_dir / "bad2.json"),
    ]
    assert "corrupt checkpoints: 2" in str(report)
