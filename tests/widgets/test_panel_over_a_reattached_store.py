"""A panel over a store a kernel reattached to draws from the orchestrator's ids grouped by
status: every order, filter and page shows what sorting every mission would, and the first
draw builds no finished mission's mirror (its rows come from their store rows)."""

from __future__ import annotations

import pytest

from mission_widgets import Mission
from mission_widgets.core.events import make_event
from mission_widgets.runtime.store import MissionStore

N = 300
RANK = ("waiting", "failed", "stalled", "cancelled", "running", "planning", "pending", "succeeded")


def status_of(i: int) -> str:
    return "failed" if i % 30 == 7 else "cancelled" if i % 45 == 3 else "succeeded"


@pytest.fixture
def reattached(orchestrators, tmp_path):
    """An orchestrator attached to a store of N missions ended by another kernel (written
    through the store's own calls), in submission order: ``(orch, [(id, status), ...])``."""
    store = MissionStore(tmp_path / "store")
    ended = []
    for i in range(N):
        mission_id = f"mission_20260101000000_{i:08x}"
        store.register(mission_id, f"goal {i}", backend="subprocess", owner=None)
        store.append_event(make_event("mission_start", mission_id), {"status": "running"})
        error = f"RuntimeError: boom {i}" if status_of(i) == "failed" else None
        store.finish_if_unfinished(mission_id, status_of(i), error)
        ended.append((mission_id, status_of(i)))
    store.close()
    return orchestrators(backend="thread", store=tmp_path / "store"), ended


def ids(rows) -> list[str]:
    return [row["id"] for row in rows]


def test_orders_filters_and_pages_match_a_sort_of_every_mission(reattached, panels):
    orch, ended = reattached
    panel = orch.panel(auto_refresh=False, page_size=25)
    panels.append(panel)
    newest = ended[::-1]
    failed = [i for i, s in newest if s == "failed"]
    assert ids(panel.view["pinned"]) == failed
    assert panel.view["pinned"][0]["note"] == "RuntimeError: boom 277"
    listed = [i for i, s in newest if s != "failed"]
    assert panel.view["listed"] == len(listed) and panel.view["pages"] == 12
    assert ids(panel.view["rows"]) == listed[:25]
    panel.set_page(3)
    assert ids(panel.view["rows"]) == listed[75:100]
    panel.set_sort("oldest")
    panel.set_page(11)
    assert ids(panel.view["rows"]) == listed[::-1][275:]
    panel.set_sort("status")
    panel.set_page(0)
    worst = sorted(listed, key=lambda i: RANK.index(dict(ended)[i]))  # stable: newest first
    assert ids(panel.view["rows"]) == worst[:25]
    panel.set_page(1)
    assert ids(panel.view["rows"]) == worst[25:50]
    panel.set_filter("cancelled")
    assert ids(panel.view["rows"]) == [i for i, s in newest if s == "cancelled"]
    counts = {chip["status"]: chip["n"] for chip in panel.view["filters"]}
    assert counts == {"all": N, "failed": 10, "cancelled": 7, "succeeded": 283}
    assert all(orch.completed.loaded(i) is None for i, _ in ended)  # no mirror was built


def test_a_mission_submitted_after_attach_is_queued_then_listed(reattached, panels):
    orch, ended = reattached
    late = Mission("one more")
    orch.submit(late)
    panel = orch.panel(auto_refresh=False, page_size=25)
    panels.append(panel)
    assert panel.view["queued"]["n"] == 1
    panel.show_queued()
    assert ids(panel.view["queued"]["rows"]) == [late.id]
    orch.cancel(late.id)
    panel.redraw()
    assert panel.view["queued"]["n"] == 0
    assert ids(panel.view["rows"])[0] == late.id  # the newest, now cancelled
    orch.forget([late.id, ended[-1][0]])
    panel.redraw()
    assert late.id not in ids(panel.view["rows"]) and panel.view["listed"] == N - 10 - 1
