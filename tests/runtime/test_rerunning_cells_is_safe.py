"""Re-running a notebook's cells is safe: a new orchestrator on a store whose queue belongs
to an earlier orchestrator of this process adopts it (the earlier one is closed, or made the
same way and idle: the same cell run again) or says so and takes it over on
``adopt_queued()``; ``counts()`` agrees with ``status()``; re-submitting a finished mission
is refused the same way for every end."""

from __future__ import annotations

import sys
import types

import pytest
from support.executors import Fail, echo
from support.runtime import one_step

from mission_widgets import MissionOrchestrator, MissionValidationError, StallPolicy


def counts_from_status(orch) -> dict[str, int]:
    shown = orch.status()["status"].astype(str).value_counts().to_dict()
    return {status: n for status, n in shown.items() if n}


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {status: n for status, n in counts.items() if n}


def test_running_the_orchestrator_cell_again_adopts_the_queue(store_dir):
    orch = MissionOrchestrator(2, store=store_dir)
    first, second = one_step("a", echo), one_step("b", echo)
    orch.submit(first).submit(second)

    orch = MissionOrchestrator(2, store=store_dir)  # the cell is run again
    try:
        assert orch.pending_queue == [first, second]  # the very objects the notebook holds
        assert nonzero(orch.counts()) == counts_from_status(orch) == {"pending": 2}
        assert orch.run_all() == [first, second]
        assert first.status == second.status == "succeeded"
        assert nonzero(orch.counts()) == counts_from_status(orch) == {"succeeded": 2}
    finally:
        orch.close()


def test_the_queue_of_a_closed_orchestrator_is_adopted(orchestrators):
    earlier = orchestrators(2)
    mission = one_step("queued by a closed orchestrator", echo)
    earlier.submit(mission)
    earlier.close()
    later = orchestrators(2)
    assert [m.id for m in later.pending_queue] == [mission.id]
    assert [m.status for m in later.run_all()] == ["succeeded"]


def test_an_open_earlier_orchestrators_queue_is_reported_and_taken_over(orchestrators, monkeypatch):
    earlier = orchestrators(3)  # made another way: not an earlier run of the same cell
    first, second = one_step("a", echo), one_step("b", echo)
    earlier.submit(first).submit(second)

    # In a notebook (an IPython shell runs) the new orchestrator says whose queue it is.
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=object))
    with pytest.warns(UserWarning, match=r"2 queued mission\(s\).*adopt_queued\(\)"):
        later = orchestrators(2)
    monkeypatch.undo()
    assert later.pending_queue == []
    # Shown by status() and counted by counts() alike, though another orchestrator owns them.
    assert nonzero(later.counts()) == counts_from_status(later) == {"pending": 2}

    assert later.adopt_queued() == [first, second]  # the same objects the notebook holds
    assert earlier.pending_queue == [] and earlier.start_queued() == []
    assert later.run_all() == [first, second]
    assert first.status == second.status == "succeeded"
    assert nonzero(later.counts()) == counts_from_status(later) == {"succeeded": 2}


def ended(orch, how: str):
    if how == "cancelled":
        mission = one_step("cancelled", echo)
        orch.submit(mission)
        assert orch.cancel(mission.id)
        return mission
    executor = echo if how == "succeeded" else Fail("broken")
    on_max = {"succeeded": "abort", "failed": "abort", "stalled": "escalate"}[how]
    mission = one_step(how, executor, max_retries=0)
    mission.stall_policy = StallPolicy(on_max_retries=on_max)
    orch.run_async(mission).wait(timeout=60)
    return mission


@pytest.mark.parametrize("how", ["succeeded", "failed", "stalled", "cancelled"])
def test_resubmitting_a_finished_mission_is_refused_for_every_end(orchestrators, how):
    orch = orchestrators(2)
    mission = ended(orch, how)
    assert mission.status == how
    events_before = len(orch.store.events_for(mission.id))
    for again in (orch.submit, orch.run_async):
        with pytest.raises(MissionValidationError, match=rf"already ended \({how}\).*runs once"):
            again(mission)
    assert orch.pending_queue == []
    assert orch.store.row(mission.id)["status"] == how  # its history is untouched
    assert len(orch.store.events_for(mission.id)) == events_before
    # A new orchestrator (a restarted kernel) refuses it the same way.
    fresh = orchestrators(2)
    with pytest.raises(MissionValidationError, match=rf"already ended \({how}\)"):
        fresh.submit(mission)
