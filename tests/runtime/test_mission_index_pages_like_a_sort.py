"""The orchestrator's MissionIndex (ids grouped by status, kept as statuses change) answers
every page, count and order exactly as sorting every mission would: checked against that
sort over random stores, status changes and forgets."""

from __future__ import annotations

import random

import pytest

from mission_widgets.orchestrator.mission_index import MissionIndex

STATUSES = ("pending", "running", "succeeded", "failed", "cancelled", "waiting")


def expected(statuses: dict[str, str], wanted, start, stop, newest, exclude=(), include=()):
    """The page as the sort of every mission gives it (the reference)."""
    ids = [
        i
        for i, status in statuses.items()
        if (status in wanted and i not in exclude) or (i in include and status not in wanted)
    ]
    if newest:
        ids.reverse()
    return len(ids), ids[max(start, 0) : stop]


@pytest.mark.parametrize("seed", range(6))
def test_pages_counts_and_orders_agree_with_a_sort_of_every_mission(seed):
    rng = random.Random(seed)
    index = MissionIndex()
    reference: dict[str, str] = {}  # id -> status, in submission order
    ids = [f"m{k:04d}" for k in range(rng.randint(0, 400))]
    attached = rng.choices(STATUSES, k=len(ids))
    index.add_many(list(ids), attached)
    reference.update(zip(ids, attached))
    for step in range(300):
        action = rng.random()
        if action < 0.2:  # submitted
            new = f"n{step:04d}"
            index.add(new)
            reference[new] = "pending"
        elif action < 0.7 and reference:  # a status changes
            some = rng.choice(list(reference))
            status = rng.choice(STATUSES)
            index.settle(some, status)
            reference[some] = status
        elif action < 0.8 and reference:  # forgotten, one or many at once
            gone = rng.sample(list(reference), k=min(len(reference), rng.choice((1, 7))))
            index.discard_many(gone)
            for mission_id in gone:
                del reference[mission_id]
        assert list(index) == list(reference)
        assert index.counts() == {
            s: n for s in STATUSES if (n := list(reference.values()).count(s))
        }
        wanted = set(rng.sample(STATUSES, k=rng.randint(1, 3)))
        exclude = set(rng.sample(list(reference), k=min(3, len(reference))))
        include = set(rng.sample(list(reference), k=min(3, len(reference))))
        start = rng.randint(0, len(reference) + 2)
        stop = start + rng.randint(0, 30)
        newest = rng.random() < 0.5
        got = index.page(wanted, start, stop, newest=newest, exclude=exclude, include=include)
        assert got == expected(reference, wanted, start, stop, newest, exclude, include)


def test_a_late_live_status_does_not_undo_a_finish():
    index = MissionIndex()
    index.add("a")
    index.settle("a", "succeeded")
    index.set_live("a", "running", finished=lambda mission_id: True)
    assert index.status_of("a") == "succeeded"
    index.set_live("a", "running", finished=lambda mission_id: False)
    assert index.status_of("a") == "running"
    index.unsettle("a")
    assert index.status_of("a") == "pending"


def test_bad_bulk_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="2 ids but 1 statuses"):
        MissionIndex().add_many(["a", "b"], ["pending"])
    with pytest.raises(ValueError, match="appears twice"):
        MissionIndex().add_many(["a", "a"], ["pending", "failed"])
