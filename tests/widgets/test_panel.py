"""MissionPanel driven like a user would: button.click(), then trait values / get_state()."""

from __future__ import annotations

import pytest
from support.widget_tasks import boom, fails_once, hang_quietly, quick, wait_for_file
from support.widgets import wait_until

from mission_widgets import Mission, MissionPanel, MissionStep


def one_step(goal: str, executor, description: str = "the step") -> Mission:
    return Mission(goal, steps=[MissionStep("only", description, executor=executor)])


def fails_at_once(goal: str, step_id: str, description: str, then: str) -> Mission:
    """A mission whose one step raises at once; ``then`` is its ``on_max_retries``."""
    return Mission(
        goal,
        steps=[MissionStep(step_id, description, executor=boom, max_retries=0)],
        stall_policy={"on_max_retries": then},
    )


def row_of(panel: MissionPanel, mission_id: str):
    for row in panel.rows:
        if row.mission_id == mission_id and row.layout.display != "none":
            return row
    raise AssertionError(f"no visible row for {mission_id}")


def settle(panel: MissionPanel, predicate, what: str, timeout: float = 20.0) -> None:
    """Poll the orchestrator and redraw until ``predicate()`` holds."""

    def check() -> bool:
        panel.orchestrator.poll_async()
        panel.redraw()
        return predicate()

    wait_until(check, timeout, what)


def test_submit_is_disabled_with_a_reason_when_there_is_no_model(orchestrators, panels):
    panel = orchestrators(backend="thread").panel(auto_refresh=False)
    panels.append(panel)
    assert panel.submit_button.disabled
    assert "needs a model" in panel.submit_button.tooltip
    assert "needs a model" in panel.goal_input.placeholder
    assert panel.overall.value == "0/0 ended"
    assert panel.filter_buttons["all"].description == "0 all"


def test_submit_button_runs_the_goal_to_success(orchestrators, panels):
    orch = orchestrators(model="demo:fast")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert not panel.submit_button.disabled
    panel.goal_input.value = "Plan a picnic"
    panel.submit_button.click()  # a Submit click just after the goal went in adds nothing
    assert panel.goal_input.value == ""
    assert "started mission_" in panel.message.value
    [mission] = orch.missions.values()
    assert mission.goal == "Plan a picnic"
    settle(panel, lambda: mission.status == "succeeded", "the submitted mission to succeed")
    row = row_of(panel, mission.id)
    state = row.bar.get_state()
    assert state["bar_style"] == "success"
    assert state["value"] == 1.0
    assert row.steps.value == f"{len(mission.steps)}/{len(mission.steps)} steps"
    assert "succeeded" in row.status.value
    assert row.cancel_button.layout.visibility == "hidden"
    assert panel.filter_buttons["succeeded"].description.endswith("1 succeeded")
    assert panel.overall.value.startswith("1/1 ended")
    assert panel.overall_bar.bar_style == "success"


def test_a_failing_click_handler_reports_and_reenables_its_button(orchestrators, panels):
    orch = orchestrators(model="demo:fast", backend="thread")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    panel.goal_input.value = "   "
    panel._submitted_at = 0.0
    panel.submit_button.click()
    assert "type a goal first" in panel.message.value
    assert not panel.submit_button.disabled

    def broken_poll():
        raise RuntimeError("store unreachable")

    orch.poll_async = broken_poll
    panel.poll_button.click()
    assert "store unreachable" in panel.message.value
    assert not panel.poll_button.disabled


def test_run_queued_starts_within_the_window_and_tops_it_up(orchestrators, panels, tmp_path):
    release = tmp_path / "release"
    orch = orchestrators(max_concurrent=2)
    missions = [one_step(f"queued {i}", wait_for_file, f"wait for {release}") for i in range(4)]
    for mission in missions:
        orch.submit(mission)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert panel.filter_buttons["pending"].description.endswith("4 pending")
    panel.run_queued_button.click()
    assert "started 2 queued" in panel.message.value
    assert len(orch.running) == 2
    assert len(orch.pending_queue) == 2
    settle(
        panel,
        lambda: all(row_of(panel, m.id).bar.value == 0.5 for m in missions[:2]),
        "the running rows to show the reported progress",
    )
    release.touch()
    settle(panel, lambda: all(m.status == "succeeded" for m in missions), "all four to finish")
    assert all(row_of(panel, m.id).bar.bar_style == "success" for m in missions)


def test_poll_button_brings_rows_up_to_date(orchestrators, panels):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    handle = orch.run_async(one_step("quick one", quick))
    row = row_of(panel, handle.mission_id)
    assert row.bar.bar_style != "success"
    wait_until(
        lambda: (orch.store.row(handle.mission_id) or {}).get("finished_at") is not None,
        20,
        "the worker to finish",
    )
    panel.poll_button.click()
    assert "polled: 1 finished" in panel.message.value
    assert row.bar.bar_style == "success"
    assert row.bar.value == 1.0


def test_cancel_button_stops_the_mission_and_keeps_the_danger_style(orchestrators, panels):
    orch = orchestrators(cancel_grace_secs=1.0)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    handle = orch.run_async(one_step("hangs", hang_quietly))
    row = row_of(panel, handle.mission_id)
    assert not row.cancel_button.disabled
    row.cancel_button.click()
    assert handle.mission.status == "cancelled"
    assert "cancelled" in panel.message.value
    assert row.bar.bar_style == ""
    assert row.bar.style.bar_color == "#6a1b9a"
    assert row.cancel_button.layout.visibility == "hidden"
    assert "cancelled" in row.status.value


def test_stall_badge_appears_with_its_reason(orchestrators, panels):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False, no_progress_secs=0.3)
    panels.append(panel)
    handle = orch.run_async(one_step("stuck", hang_quietly))
    row = row_of(panel, handle.mission_id)
    assert "mission-widgets-stall" not in row.note.value

    def badge_shown() -> bool:
        panel.poll_button.click()
        return "mission-widgets-stall" in row.note.value

    wait_until(badge_shown, 20, "the stall badge")
    assert "no progress for" in row.note.value
    assert row.bar.bar_style == "warning"
    assert "\u26a0 stalled" in row.status.value
    assert row.cancel_button.layout.visibility == "visible"  # its worker still runs
    row.cancel_button.click()
    assert "mission-widgets-stall" not in row.note.value  # cancelled: no stale badge
    assert "\u2298 cancelled" in row.status.value
    assert handle.mission.status == "cancelled"


def test_details_show_steps_last_error_and_log_tail(orchestrators, panels):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    mission = fails_at_once("explodes", "kaboom", "blow up", then="abort")
    orch.run_async(mission)
    settle(panel, lambda: mission.status == "failed", "the mission to fail")
    row = row_of(panel, mission.id)
    assert row.bar.bar_style == "danger"
    assert "mission-widgets-error" in row.note.value  # the cause is inline, not hidden
    assert "boom in blow up" in row.note.value
    assert "\u2716 failed" in row.status.value
    assert row.cancel_button.layout.visibility == "hidden"
    assert row.detail.layout.display == "none"
    row.details_toggle.value = True
    assert row.detail.layout.display == ""
    assert "kaboom" in row.detail.value
    assert "boom in blow up" in row.detail.value
    assert "worker pid" in row.detail.value  # the worker's log line
    row.details_toggle.value = False
    assert row.detail.layout.display == "none"


def test_a_recovered_retry_shows_as_recovered_not_as_an_error(orchestrators, panels, tmp_path):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    mission = Mission(
        "recovers",
        steps=[
            MissionStep("flaky", f"flaky {tmp_path / 'tried'}", executor=fails_once, max_retries=2)
        ],
    )
    orch.run_async(mission)
    settle(panel, lambda: mission.status == "succeeded", "the mission to succeed")
    row = row_of(panel, mission.id)
    assert "mission-widgets-error" not in row.note.value
    row.details_toggle.value = True
    assert "transient glitch" in row.detail.value
    assert "mission-widgets-recovered" in row.detail.value
    assert "Last error" not in row.detail.value


def test_a_thousand_missions_make_one_page_of_rows_newest_first(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast")
    missions = [Mission(f"goal {i}") for i in range(1000)]
    for mission in missions:
        orch.submit(mission)
    newest = [m.id for m in reversed(missions)]
    panel = orch.panel(auto_refresh=False, page_size=25)
    panels.append(panel)
    assert len(panel.rows) == 25
    assert len(panel.rows_box.children) == 25
    assert panel.page_label.value == "page 1/40"
    assert [r.mission_id for r in panel.rows] == newest[:25]
    assert "1000 pending" in panel.summary.value  # the summary by status, beyond a page
    assert panel.prev_button.disabled
    panel.next_button.click()
    assert panel.page_label.value == "page 2/40"
    assert [r.mission_id for r in panel.rows] == newest[25:50]
    assert len(panel.rows) == 25  # rows are reused, not added
    panel.sort.value = "oldest"
    assert [r.mission_id for r in panel.rows] == [m.id for m in missions[:25]]
    panel.sort.value = "newest"
    panel.filter_buttons["succeeded"].click()  # zero succeeded: the button is hidden
    assert panel.filter_buttons["succeeded"].layout.display == ""  # ... unless active
    assert panel.page_label.value == "page 1/1"
    assert panel.rows_box.children == ()
    panel.filter_buttons["pending"].click()
    assert panel.filter_buttons["pending"].button_style == "info"
    assert len(panel.rows_box.children) == 25
    panel.filter_buttons["all"].click()
    assert panel.filter_buttons["succeeded"].layout.display == "none"


def test_paging_keeps_its_place_and_a_submitted_mission_is_revealed(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast", max_concurrent=1)
    missions = [Mission(f"goal {i}") for i in range(60)]
    for mission in missions:
        orch.submit(mission)
    panel = orch.panel(auto_refresh=False, page_size=25)
    panels.append(panel)
    panel.next_button.click()
    on_page_two = [r.mission_id for r in panel.rows]
    for i in range(30):  # newer missions push everything down by more than a page
        orch.submit(Mission(f"later {i}"))
    panel.redraw()
    assert panel.page == 2
    assert on_page_two[0] in [r.mission_id for r in panel.rows]  # still where we were
    panel.goal_input.value = "Submitted with Enter"  # Enter (continuous_update=False)
    [submitted] = [m for m in orch.missions.values() if m.goal == "Submitted with Enter"]
    assert panel.page == 0
    assert panel.rows[0].mission_id == submitted.id
    assert "Submitted with Enter" in panel.rows[0].goal.value


def test_the_panel_follows_a_mission_that_starts(orchestrators, panels, tmp_path):
    orch = orchestrators(max_concurrent=1)
    release = tmp_path / "go"
    missions = [one_step(f"queued {i}", wait_for_file, f"wait for {release}") for i in range(30)]
    for mission in missions:
        orch.submit(mission)
    panel = orch.panel(auto_refresh=False, page_size=10)
    panels.append(panel)
    assert missions[0].id not in [r.mission_id for r in panel.rows]  # oldest: last page
    panel.run_queued_button.click()
    assert panel.page == 2
    assert missions[0].id in [r.mission_id for r in panel.rows if r.layout.display != "none"]
    orch.cancel_all()


def test_max_concurrent_control_drives_the_orchestrator(orchestrators, panels):
    orch = orchestrators(backend="thread", max_concurrent=3)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert panel.max_concurrent.value == 3
    panel.max_concurrent.value = 7
    assert orch.max_concurrent == 7
    orch.max_concurrent = 2
    panel.redraw()
    assert panel.max_concurrent.get_state()["value"] == 2


def test_auto_refresh_follows_running_missions_then_goes_idle(orchestrators, panels, tmp_path):
    release = tmp_path / "go"
    orch = orchestrators()
    panel = orch.panel(auto_refresh=True, refresh_interval=0.25)
    panels.append(panel)
    handle = orch.run_async(one_step("watched", wait_for_file, f"wait for {release}"))
    wait_until(lambda: panel.refreshing, 5, "the refresh thread to start")
    row = row_of(panel, handle.mission_id)
    wait_until(lambda: row.bar.value == 0.5, 20, "auto-refresh to draw the progress")
    release.touch()
    wait_until(lambda: row.bar.bar_style == "success", 20, "auto-refresh to draw success")


def test_closing_the_panel_stops_its_refresh_thread(orchestrators, panels, tmp_path):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=True, refresh_interval=0.25)
    handle = orch.run_async(one_step("watched", wait_for_file, f"wait for {tmp_path / 'x'}"))
    wait_until(lambda: panel.refreshing, 5, "the refresh thread to start")
    panel.close()
    wait_until(lambda: not panel.refreshing, 5, "the refresh thread to stop after close")
    orch.cancel(handle.mission_id)


def test_static_html_is_in_the_mimebundle(orchestrators, panels):
    orch = orchestrators(backend="thread")
    orch.submit(one_step("<b>escaped</b> goal", quick))
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert "&lt;b&gt;escaped&lt;/b&gt; goal" in html
    assert "1 pending" in html
    assert "0/1 ended" in html
    # The live widget carries the rule that hides this panel's snapshot where it renders.
    assert panel.snapshot_class in html
    assert f".{panel.snapshot_class}{{display:none" in panel.snapshot_hider.value


def test_bad_panel_options_are_refused(orchestrators):
    orch = orchestrators(backend="thread")
    with pytest.raises(ValueError, match="page_size"):
        MissionPanel(orch, page_size=0)
    with pytest.raises(ValueError, match="refresh_interval"):
        MissionPanel(orch, refresh_interval=0.01)


def wait_for_the_question(panel: MissionPanel, mission: Mission) -> None:
    """Wait until the mission's row asks for a decision. A mission that ends instead fails
    the test (it never asked: the very regression these tests are for), it does not skip."""

    def asking() -> bool:
        row = row_of(panel, mission.id)
        return row.decision_box is not None and row.decision_box.layout.display == ""

    def ended() -> bool:
        return mission.finished_at is not None

    settle(panel, lambda: asking() or ended(), "the row to ask for a decision")
    assert asking(), f"the mission ended {mission.status} instead of asking: {mission.error}"


def test_a_mission_waiting_for_a_person_asks_in_its_row_and_the_buttons_answer(
    orchestrators, panels
):
    orch = orchestrators(model="demo")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    mission = Mission(
        "asks a person",
        steps=[
            MissionStep("shaky", "call the shaky tool", executor=boom, max_retries=0),
            MissionStep("after", "runs after", executor=quick, depends_on=["shaky"]),
        ],
        stall_policy={"on_max_retries": "ask"},
    )
    orch.run_async(mission)
    wait_for_the_question(panel, mission)
    row = row_of(panel, mission.id)
    assert "waiting for you" in row.note.value and "shaky" in row.note.value
    assert "mission-widgets-stall" not in row.note.value  # said once, as the question
    assert panel.overall.value.startswith("0/1 ended")  # waiting is not over
    assert "Step shaky" in row.decision.value
    assert "call the shaky tool" in row.decision.value
    assert "boom in call the shaky tool" in row.decision.value  # its last errors
    assert row.cancel_button.layout.visibility == "visible"
    row.explain_button.click()
    assert "mission-widgets-explanation" in row.explanation.value
    assert not row.explain_button.disabled
    row.decision_buttons["skip"].click()
    assert "skip: sent to" in panel.message.value
    settle(panel, lambda: mission.status == "succeeded", "the skipped mission to go on")
    assert row.decision_box.layout.display == "none"
    assert "waiting for you" not in row.note.value


def test_abort_from_the_row_fails_the_waiting_mission(orchestrators, panels):
    orch = orchestrators(model="demo")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    mission = fails_at_once("asks then aborts", "shaky", "call the shaky tool", then="ask")
    orch.run_async(mission)
    wait_for_the_question(panel, mission)
    row = row_of(panel, mission.id)
    row.decision_buttons["abort"].click()
    settle(panel, lambda: mission.status == "failed", "the aborted mission to fail")
    assert row.bar.bar_style == "danger"
    assert row.decision_box.layout.display == "none"


def test_clear_finished_forgets_ended_missions_and_keeps_the_others(
    orchestrators, panels, tmp_path
):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    done = orch.run_async(one_step("ends quickly", quick))
    waiting = orch.run_async(one_step("still waiting", wait_for_file, f"wait {tmp_path / 'x'}"))
    settle(panel, lambda: done.mission.status == "succeeded", "the quick mission to end")
    panel.clear_button.click()
    assert "cleared 1 finished" in panel.message.value
    shown = [r.mission_id for r in panel.rows_box.children]
    assert shown == [waiting.mission_id]
    assert panel.overall.value.startswith("0/1 ended")
    orch.cancel(waiting.mission_id)


def test_worst_first_sort_and_the_goal_tooltip(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast")
    long_goal = ("A goal long enough to be cut on one line " * 5).strip()
    first, second, third = (Mission(goal) for goal in ("first", long_goal, "third"))
    for mission in (first, second, third):
        orch.submit(mission)
    orch.cancel(first.id)  # cancelled before it started
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert [r.mission_id for r in panel.rows] == [third.id, second.id, first.id]
    panel.sort.value = "status"
    assert [r.mission_id for r in panel.rows] == [first.id, third.id, second.id]
    goal_cell = row_of(panel, second.id).goal.value
    assert f'title="{long_goal}"' in goal_cell  # the full goal as a tooltip
    assert "white-space:nowrap" in goal_cell and "text-overflow:ellipsis" in goal_cell
