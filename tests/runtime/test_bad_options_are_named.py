"""Bad input is refused at once with an error naming the culprit: every numeric option
(NaN, infinity, negative, a bool or a string), ``store=`` of a wrong kind, and an unknown
orchestrator option (named, with the close match suggested)."""

from __future__ import annotations

import math

import pytest

from mission_widgets import Mission, MissionOrchestrator, MissionValidationError, StallPolicy

BAD_NUMBERS = [math.nan, math.inf, -1.0, True, "2"]


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("name", ["heartbeat_secs", "heartbeat_timeout_secs", "cancel_grace_secs"])
def test_orchestrator_numbers_are_checked_and_named(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        MissionOrchestrator(2, store=tmp_path / "store", **{name: value})
    assert not (tmp_path / "store").exists()  # refused before anything was made


@pytest.mark.parametrize("value", [0, 0.0])
def test_a_heartbeat_must_be_positive(tmp_path, value):
    with pytest.raises(ValueError, match="heartbeat_secs"):
        MissionOrchestrator(2, store=tmp_path / "store", heartbeat_secs=value)


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_policy_and_mission_numbers_are_checked_and_named(value):
    with pytest.raises(MissionValidationError, match="decision_timeout_secs"):
        StallPolicy(on_max_retries="ask", decision_timeout_secs=value)
    with pytest.raises(MissionValidationError, match="backoff_factor"):
        Mission("g", backoff_factor=value)


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_reconcile_numbers_are_checked_and_named(orchestrators, value):
    orch = orchestrators(2)
    with pytest.raises(ValueError, match="stall_threshold_secs"):
        orch.reconcile(value)
    with pytest.raises(ValueError, match="no_progress_secs"):
        orch.reconcile(600, no_progress_secs=value)


@pytest.mark.parametrize("store", [123, 1.5, ["a"], object()])
def test_a_store_of_a_wrong_kind_names_store(store):
    with pytest.raises(TypeError, match=r"^store must be .*got "):
        MissionOrchestrator(2, store=store)


def test_an_unknown_option_is_named_with_its_close_match(tmp_path):
    with pytest.raises(
        TypeError, match=r"unknown option 'max_concurent'; did you mean 'max_concurrent'"
    ):
        MissionOrchestrator(store=tmp_path / "store", max_concurent=3)
    with pytest.raises(
        TypeError, match=r"unknown option 'heartbeat_sec'; did you mean 'heartbeat_secs'"
    ):
        MissionOrchestrator(store=tmp_path / "store", heartbeat_sec=1)
    with pytest.raises(TypeError, match=r"unknown option 'colour'"):
        MissionOrchestrator(store=tmp_path / "store", backend="thread", colour="red")
