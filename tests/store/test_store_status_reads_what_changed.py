"""status() costs in proportion to what changed: it reads only the rows changed since its
last answer (per-row change versions kept by the store's triggers), and its answer is always
the one a fresh read of every row gives."""

from __future__ import annotations

import pandas as pd
import pytest

from mission_widgets.core.events import make_event
from mission_widgets.orchestrator.health import flag_unhealthy
from mission_widgets.orchestrator.status_table import StatusTable, frame_columns
from mission_widgets.runtime.store import STATUS_COLUMNS, MissionStore


class CountingStore(MissionStore):
    """A real store that records how many rows each status read returned."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int | None, int]] = []

    def status_records(self, finished=None, *, changed_since=None):
        columns, rows = super().status_records(finished, changed_since=changed_since)
        self.reads.append((changed_since, len(rows)))
        return columns, rows


def _fill(store: MissionStore, n: int) -> list[str]:
    ids = [f"m{i:04d}" for i in range(n)]
    for mission_id in ids:
        store.register(mission_id, f"goal {mission_id}", backend="thread", owner=None)
    return ids


def _start(store: MissionStore, mission_id: str) -> None:
    store.append_event(make_event("mission_start", mission_id), {"status": "running"})


def _fresh(store: MissionStore) -> pd.DataFrame:
    return StatusTable(MissionStore(store.root)).frame()


def _same(cached: pd.DataFrame, fresh: pd.DataFrame) -> None:
    keep = [c for c in cached.columns if c != "elapsed_s"]  # elapsed_s runs with the clock
    pd.testing.assert_frame_equal(cached[keep], fresh[keep])


@pytest.fixture
def counting(tmp_path) -> CountingStore:
    made = CountingStore(tmp_path / "store")
    yield made
    made.close()


def test_after_one_mission_changes_status_reads_that_row_only(counting):
    ids = _fill(counting, 50)
    table = StatusTable(counting)
    assert len(table.frame()) == 50
    counting.reads.clear()
    _start(counting, ids[7])
    frame = table.frame()
    assert [n for _, n in counting.reads] == [1]  # one changed row read, not 50
    assert frame.set_index("id").loc[ids[7], "status"] == "running"
    counting.reads.clear()
    table.frame()
    assert counting.reads == []  # nothing changed: nothing read


def test_a_new_status_alone_or_a_stall_reason_alone_is_seen(counting):
    ids = _fill(counting, 5)
    table = StatusTable(counting)
    _start(counting, ids[2])
    table.frame()
    flag_unhealthy(counting, ids[2], "no_heartbeat", "test")  # stall_reason only
    row = table.frame().set_index("id").loc[ids[2]]
    assert row["stall_reason"] == "no_heartbeat"
    with counting._write() as conn:  # the status alone, as any writer might change it
        conn.execute("UPDATE missions SET status='planning' WHERE id=?", (ids[2],))
    assert table.frame().set_index("id").loc[ids[2], "status"] == "planning"
    with counting._write() as conn:
        conn.execute("UPDATE missions SET stall_reason=NULL WHERE id=?", (ids[2],))
    assert pd.isna(table.frame().set_index("id").loc[ids[2], "stall_reason"])


def test_changes_by_another_process_appends_and_removals_match_a_fresh_read(counting):
    ids = _fill(counting, 30)
    table = StatusTable(counting)
    table.frame()
    other = MissionStore(counting.root)  # another process's connection to the same file
    _start(other, ids[3])
    other.finish_if_unfinished(ids[3], "succeeded", None)
    _start(other, ids[10])
    more = [f"n{i}" for i in range(4)]
    for mission_id in more:
        other.register(mission_id, "later", backend="thread", owner=None)
    frame = table.frame()
    _same(frame, _fresh(counting))
    assert list(frame["id"]) == [*ids, *more]  # submission order kept
    assert frame.set_index("id").loc[ids[3], "status"] == "succeeded"
    other.finish_if_unfinished(ids[10], "failed", "boom")
    assert other.prune(ids=[ids[3]]) == [ids[3]]
    frame = table.frame()
    _same(frame, _fresh(counting))
    assert ids[3] not in set(frame["id"])
    other.close()


def test_the_answer_is_a_copy_and_columns_come_from_one_list(counting):
    _fill(counting, 3)
    table = StatusTable(counting)
    first = table.frame()
    first.loc[0, "goal"] = "edited by the caller"
    assert table.frame().loc[0, "goal"] == "goal m0000"
    assert list(first.columns) == frame_columns()
    assert set(STATUS_COLUMNS) <= set(first.columns)
    assert frame_columns()[-2:] == ["waiting_on", "health"]


def test_an_empty_store_has_the_same_columns_and_dtypes_as_a_full_one(tmp_path, counting):
    empty = StatusTable(MissionStore(tmp_path / "empty")).frame()
    _fill(counting, 2)
    full = StatusTable(counting).frame()
    assert list(empty.columns) == list(full.columns)
    assert (empty.dtypes.drop("waiting_on") == full.dtypes.drop("waiting_on")).all()
