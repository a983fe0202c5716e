"""The one answer to a question: ``claim_decision`` records the first answer and its
request in one transaction; a later one (a person's or the timeout's fallback) is refused
with the first answer, and the worker's fallback yields to a person who came first."""

from __future__ import annotations

from mission_widgets import Mission
from mission_widgets.runtime.decisions import StoreDecisionSource


def test_the_first_answer_is_recorded_with_its_request_and_a_second_is_refused(store):
    request = {"action": "retry", "question": "q1"}
    first = store.claim_decision(
        "m", "q1", step_id="s", action="retry", decided_by="ann", request=request
    )
    assert first is None
    again = store.claim_decision(
        "m", "q1", step_id="s", action="skip", decided_by="bob", request={"action": "skip"}
    )
    assert again is not None and (again["action"], again["decided_by"]) == ("retry", "ann")
    assert [r["payload"] for r in store.take_requests(["m"], ["decision"])] == [request]
    # Another question of the same mission is a question of its own.
    assert store.claim_decision("m", "q2", step_id="s", action="skip", decided_by="bob") is None
    assert store.decision_of("m", "q2")["action"] == "skip"


def test_the_timeout_fallback_yields_to_a_person_who_claimed_first(store):
    mission = Mission("g", mission_id="m")
    source = StoreDecisionSource(store, mission)
    store.claim_decision(
        "m", "q1", step_id="s", action="skip", decided_by="ann", request={"action": "skip"}
    )
    assert source.settle_timeout("q1", "s", "abort") == "skip"
    assert store.take_requests(["m"]) == []  # taken: it answers no later question
    # Nobody answered q2: the fallback's claim wins, and a late person is refused.
    assert source.settle_timeout("q2", "s", "abort") is None
    late = store.claim_decision("m", "q2", step_id="s", action="retry", decided_by="bob")
    assert late is not None and late["decided_by"].startswith("timeout")
