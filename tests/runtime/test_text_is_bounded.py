"""Bounds on text: an error message, traceback or message is stored up to 64 KiB (its start
and end, with a note of what was left out); custom events per mission are capped with a
note; a mission's log is capped, its tail kept."""

from __future__ import annotations

import os

from support.bounds import FailsHuge, Shouts
from support.runtime import event_names, one_step, store_events, wait_for

from mission_widgets import StallPolicy
from mission_widgets.core.checks import TEXT_LIMIT
from mission_widgets.runtime.worker import CUSTOM_EVENTS_CAP_ENV, LOG_CAP_ENV

HUGE = 2_000_000


def store_bytes(root) -> int:
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(root)
        for name in names
    )


def test_a_huge_error_message_is_stored_bounded(orchestrators, store_dir):
    orch = orchestrators(2)
    mission = one_step("fails loudly", FailsHuge(HUGE), max_retries=2)
    mission.stall_policy = StallPolicy(on_max_retries="abort")
    assert orch.run_async(mission).wait(timeout=120).status == "failed"

    error = orch.status().set_index("id").loc[mission.id, "error"]
    assert len(error) < TEXT_LIMIT + 200 and "characters not stored" in error
    failures = [e for e in store_events(store_dir) if e["event"] == "step_failure"]
    assert len(failures) == 3
    for event in failures:
        text = event["payload"]["error_message"]
        assert len(text) < TEXT_LIMIT + 200 and text.startswith("RuntimeError: EEE")
    history = orch.get(mission.id).steps[0].error_history
    assert all(len(entry["error"]) < TEXT_LIMIT + 200 for entry in history)
    # Three failures of 2 MB each, and the whole store is far smaller than one of them.
    assert store_bytes(orch.store.root) < HUGE


def test_custom_events_are_capped_with_a_note_and_the_log_keeps_its_tail(
    orchestrators, store_dir, monkeypatch
):
    monkeypatch.setenv(CUSTOM_EVENTS_CAP_ENV, "50")
    monkeypatch.setenv(LOG_CAP_ENV, str(256 * 1024))
    orch = orchestrators(2, heartbeat_secs=0.2)
    mission = one_step("shouts", Shouts(events=80, printed=1 << 20))
    assert orch.run_async(mission).wait(timeout=120).status == "succeeded"

    names = event_names(store_dir, mission.id)
    assert names.count("my_note") == 50
    assert names.count("custom_events_capped") == 1
    assert names[-1] == "mission_done"  # the engine's own events are never capped
    log = orch.store.log_file(mission.id)
    wait_for(lambda: log.stat().st_size <= 256 * 1024 or not orch.running, 30, "the cap")
    text = log.read_text()
    assert log.stat().st_size <= 256 * 1024 + 4096
    assert "bytes were dropped, the tail is kept" in text
    assert "THE END OF THE LOG" in text
