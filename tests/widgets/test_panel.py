"""MissionPanel through its Python API: state in (``panel.view``, what the browser draws),
actions out (``panel.submit(...)``, ``panel.cancel(id)``, the browser's custom messages)."""

from __future__ import annotations

import json

import pytest
from support.widget_tasks import boom, fails_once, hang_quietly, quick, wait_for_file
from support.widgets import browser_says, sent_messages, wait_until

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


def settle(panel: MissionPanel, predicate, what: str, timeout: float = 20.0) -> None:
    """Poll the orchestrator and redraw until ``predicate()`` holds."""

    def check() -> bool:
        panel.orchestrator.poll_async()
        panel.redraw()
        return predicate()

    wait_until(check, timeout, what)


def shown(panel: MissionPanel, mission_id: str) -> bool:
    return any(row["id"] == mission_id for row in panel.rows)


def test_submit_is_disabled_with_a_reason_when_there_is_no_model(orchestrators, panels):
    panel = orchestrators(backend="thread").panel(auto_refresh=False)
    panels.append(panel)
    assert panel.view["can_submit"] is False
    assert panel.header["text"] == "no missions yet"
    assert panel.view["filters"] == [{"status": "all", "n": 0}]
    panel.submit("Plan a picnic")
    assert panel.view["message"]["kind"] == "error"
    assert "needs a model" in panel.view["message"]["text"]


def test_submit_runs_the_goal_to_success_and_the_header_says_the_total_time(orchestrators, panels):
    orch = orchestrators(model="demo:fast")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert panel.view["can_submit"] is True
    handle = panel.submit("Plan a picnic")
    assert panel.view["message"] == {
        "kind": "info",
        "text": "started \u201cPlan a picnic\u201d",  # messages name goals, not ids
        "seq": 1,
    }
    mission = handle.mission
    settle(panel, lambda: mission.status == "succeeded", "the submitted mission to succeed")
    row = panel.row(mission.id)
    assert row["status"] == "succeeded" and row["glyph"] == "\u2714"
    assert row["progress"] == 1.0
    assert row["steps"] == f"{len(mission.steps)}/{len(mission.steps)}"
    assert row["cancellable"] is False
    assert {"status": "succeeded", "n": 1} in panel.view["filters"]
    header = panel.header
    assert (header["ended"], header["total"], header["done"]) == (1, 1, 1)
    assert header["segments"] == [["succeeded", 1]]
    assert header["finished_at"] is not None
    assert header["text"].startswith("1/1 [") and " total, " in header["text"]


def test_an_empty_submit_is_a_friendly_hint_and_a_failing_action_reports(orchestrators, panels):
    orch = orchestrators(model="demo:fast", backend="thread")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert panel.submit("   ") is None
    message = panel.view["message"]
    assert message["kind"] == "hint"
    assert message["text"] == "Type a goal in the box first, then press Enter or Submit."
    assert "Error" not in message["text"] and not orch.missions

    def broken_poll():
        raise RuntimeError("store unreachable")

    orch.poll_async = broken_poll
    browser_says(panel, action="poll")
    assert panel.view["message"]["kind"] == "error"
    assert "store unreachable" in panel.view["message"]["text"]


def test_queued_missions_fold_into_one_line_and_run_queued_tops_up_the_window(
    orchestrators, panels, tmp_path
):
    release = tmp_path / "release"
    orch = orchestrators(max_concurrent=2)
    missions = [one_step(f"queued {i}", wait_for_file, f"wait for {release}") for i in range(4)]
    for mission in missions:
        orch.submit(mission)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert panel.view["queued"] == {"n": 4, "open": False, "rows": [], "more": 0}
    assert panel.view["rows"] == [] and panel.view["pinned"] == []
    assert panel.header["text"] == "0/4 [not started]"  # queued work starts no clock
    panel.show_queued(True)
    assert [r["id"] for r in panel.view["queued"]["rows"]] == [m.id for m in missions]
    browser_says(panel, action="run_queued")
    assert "started 2 queued" in panel.view["message"]["text"]
    assert len(orch.running) == 2 and len(orch.pending_queue) == 2
    assert panel.view["queued"]["n"] == 2
    running = missions[:2]
    settle(
        panel,
        lambda: all(
            shown(panel, m.id) and panel.row(m.id)["progress"] == 0.5 for m in missions[:2]
        ),
        "the running rows to show the reported progress",
    )
    running = panel.row(missions[0].id)
    assert running["note"] == "half way" and running["note_kind"] == "message"
    assert running["started_at"] is not None and running["elapsed"] is None  # ticks in JS
    assert panel.header["started_at"] is not None and "<" in panel.header["text"]
    release.touch()
    settle(panel, lambda: all(m.status == "succeeded" for m in missions), "all four to finish")
    assert all(panel.row(m.id)["status"] == "succeeded" for m in missions)
    assert panel.header["text"].startswith("4/4 [")


def test_poll_brings_rows_up_to_date(orchestrators, panels):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    handle = orch.run_async(one_step("quick one", quick))
    panel.redraw()
    assert panel.row(handle.mission_id)["status"] != "succeeded"
    wait_until(
        lambda: (orch.store.row(handle.mission_id) or {}).get("finished_at") is not None,
        20,
        "the worker to finish",
    )
    panel.poll()
    assert "polled: 1 finished" in panel.view["message"]["text"]
    assert panel.row(handle.mission_id)["status"] == "succeeded"
    assert panel.row(handle.mission_id)["progress"] == 1.0


def test_cancel_stops_the_mission_and_the_message_names_its_goal(orchestrators, panels):
    orch = orchestrators(cancel_grace_secs=1.0)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    handle = orch.run_async(one_step("hangs", hang_quietly))
    panel.redraw()
    assert panel.row(handle.mission_id)["cancellable"] is True
    browser_says(panel, action="cancel", id=handle.mission_id)
    assert handle.mission.status == "cancelled"
    assert panel.view["message"]["text"] == "cancelled \u201changs\u201d"
    row = panel.row(handle.mission_id)
    assert row["status"] == "cancelled" and row["glyph"] == "\u2298"
    assert row["cancellable"] is False


def test_a_hung_mission_is_pinned_with_its_reason(orchestrators, panels):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False, no_progress_secs=0.3)
    panels.append(panel)
    handle = orch.run_async(one_step("stuck", hang_quietly))
    panel.redraw()
    assert [r["id"] for r in panel.view["pinned"]] == []

    def pinned() -> bool:
        panel.poll()
        return [r["id"] for r in panel.view["pinned"]] == [handle.mission_id]

    wait_until(pinned, 20, "the hung mission to be pinned")
    row = panel.row(handle.mission_id)
    assert row["attention"] is True
    assert row["health"] == "no_progress" and row["note"] == "no progress"  # still runs
    assert row["activity_at"] is not None  # the browser ticks "no progress for 12 s" on
    assert row["cancellable"] is True  # its worker still runs
    panel.cancel(handle.mission_id)
    assert handle.mission.status == "cancelled"
    assert panel.row(handle.mission_id)["note_kind"] != "stall"  # cancelled: no stale badge


def test_details_show_steps_the_error_once_and_the_log_tail(orchestrators, panels):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    mission = fails_at_once("explodes", "kaboom", "blow up", then="abort")
    orch.run_async(mission)
    settle(panel, lambda: mission.status == "failed", "the mission to fail")
    assert [r["id"] for r in panel.view["pinned"]] == [mission.id]  # failures come first
    row = panel.row(mission.id)
    assert row["note_kind"] == "error" and "boom in blow up" in row["note"]
    assert panel.view["details"] == {}
    browser_says(panel, action="details", id=mission.id, open=True)
    details = panel.view["details"][mission.id]
    assert "kaboom" in details
    assert "boom in blow up" in details
    assert "worker pid" in details  # the worker's log line
    browser_says(panel, action="details", id=mission.id, open=False)
    assert panel.view["details"] == {}


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
    assert panel.row(mission.id)["note_kind"] != "error"
    assert panel.view["pinned"] == []
    panel.show_details(mission.id)
    assert "transient glitch" in panel.view["details"][mission.id]
    assert "mission-widgets-recovered" in panel.view["details"][mission.id]
    assert "Last error" not in panel.view["details"][mission.id]


def test_a_thousand_queued_missions_draw_one_bounded_state(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast")
    missions = [Mission(f"goal {i}") for i in range(1000)]
    for mission in missions:
        orch.submit(mission)
    panel = orch.panel(auto_refresh=False, page_size=25)
    panels.append(panel)
    assert panel.view["queued"]["n"] == 1000
    assert panel.rows == []
    assert len(json.dumps(panel.view)) < 4_000  # one line says "1000 queued"
    panel.show_queued()
    queued = panel.view["queued"]
    assert [r["id"] for r in queued["rows"]] == [m.id for m in missions[:25]]  # next to run
    assert queued["more"] == 975
    panel.set_filter("pending")
    assert (panel.view["page"], panel.view["pages"]) == (0, 40)
    assert [r["id"] for r in panel.view["rows"]] == [m.id for m in reversed(missions)][:25]
    browser_says(panel, action="page", page=1)
    assert panel.view["page"] == 1
    assert [r["id"] for r in panel.view["rows"]] == [m.id for m in reversed(missions)][25:50]
    panel.set_sort("oldest")
    assert panel.view["page"] == 0
    assert [r["id"] for r in panel.view["rows"]] == [m.id for m in missions[:25]]
    assert len(json.dumps(panel.view)) < 25 * 1_000 + 4_000  # a page, never the store
    panel.set_filter("succeeded")
    assert panel.view["rows"] == [] and panel.view["pages"] == 1
    assert {"status": "succeeded", "n": 0} in panel.view["filters"]  # the active chip stays


def test_problems_stay_pinned_whatever_the_page(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast")
    good = [Mission(f"fine {i}") for i in range(30)]
    for mission in good:
        orch.submit(mission)
    bad = fails_at_once("breaks", "kaboom", "blow up", then="abort")
    orch.submit(bad)
    orch.start_queued()
    panel = orch.panel(auto_refresh=False, page_size=10)
    panels.append(panel)
    # Ended and reaped: a mission that has ended but is still in flight is pinned as well.
    settle(
        panel,
        lambda: all(m.is_finished for m in [*good, bad]) and not orch.running,
        "all to end",
    )
    assert [r["id"] for r in panel.view["pinned"]] == [bad.id]
    assert panel.view["pages"] == 3
    for page in range(3):
        panel.set_page(page)
        assert [r["id"] for r in panel.view["pinned"]] == [bad.id]
        assert bad.id not in [r["id"] for r in panel.view["rows"]]
    header = panel.header
    assert header["segments"] == [["succeeded", 30], ["failed", 1]]  # not a red bar
    assert header["text"].startswith("31/31 [")
    snapshot = panel.snapshot_html()
    assert "breaks" in snapshot and "boom in blow up" in snapshot  # not only this page
    assert "30 succeeded, 1 failed" in snapshot


def test_two_panels_on_one_orchestrator_show_the_same_numbers(orchestrators, panels, tmp_path):
    release = tmp_path / "go"
    orch = orchestrators(max_concurrent=2)
    missions = [one_step(f"job {i}", wait_for_file, f"wait for {release}") for i in range(3)]
    for mission in missions:
        orch.submit(mission)
    first = orch.panel(auto_refresh=False)
    panels.append(first)
    orch.start_queued()
    settle(first, lambda: first.header["started_at"] is not None, "the clock to start")
    second = orch.panel(auto_refresh=False)
    panels.append(second)
    release.touch()
    settle(first, lambda: all(m.status == "succeeded" for m in missions), "all to succeed")
    second.redraw()
    assert first.header == second.header
    assert first.header["done"] == 3


def test_a_person_blocking_the_work_is_said_instead_of_an_eta(orchestrators, panels):
    orch = orchestrators(model="demo", max_concurrent=1)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    asks = fails_at_once("asks a person", "shaky", "call the shaky tool", then="ask")
    later = one_step("queued behind it", quick)
    orch.submit(asks)
    orch.submit(later)
    orch.start_queued()
    settle(panel, lambda: bool(panel.view["questions"]), "the mission to ask")
    header = panel.header
    assert header["blocked"] == "blocked: 1 waits for you"
    assert header["text"].endswith(", blocked: 1 waits for you]")
    assert "<" not in header["text"]  # no ETA while nothing can move
    row = panel.row(asks.id)
    assert row["status"] == "waiting" and row["attention"] is True
    assert row["note"] == "waiting for you at step shaky"
    panel.decide(asks.id, "abort")
    settle(panel, lambda: later.status == "succeeded", "the queued mission to run after")
    assert panel.header["blocked"] is None


def test_at_once_drives_the_orchestrator_and_refuses_zero_visibly(orchestrators, panels):
    orch = orchestrators(backend="thread", max_concurrent=3)
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert panel.view["max_concurrent"] == 3
    browser_says(panel, action="max_concurrent", value="7")
    assert orch.max_concurrent == 7
    for bad in ("0", "-2", "1.5", "lots"):
        browser_says(panel, action="max_concurrent", value=bad)
        assert orch.max_concurrent == 7
        message = panel.view["message"]
        assert message["kind"] == "error"
        assert "at least 1" in message["text"] and repr(bad) in message["text"]
        assert panel.view["max_concurrent"] == 7  # the box goes back to the real value
    orch.max_concurrent = 2
    panel.redraw()
    assert panel.view["max_concurrent"] == 2


def test_auto_refresh_follows_running_missions_then_goes_idle(orchestrators, panels, tmp_path):
    release = tmp_path / "go"
    orch = orchestrators()
    panel = orch.panel(auto_refresh=True, refresh_interval=0.25)
    panels.append(panel)
    handle = orch.run_async(one_step("watched", wait_for_file, f"wait for {release}"))
    wait_until(lambda: panel.refreshing, 5, "the refresh thread to start")
    wait_until(
        lambda: shown(panel, handle.mission_id) and panel.row(handle.mission_id)["progress"] == 0.5,
        20,
        "auto-refresh to draw the progress",
    )
    release.touch()
    wait_until(
        lambda: panel.row(handle.mission_id)["status"] == "succeeded", 20, "auto-refresh success"
    )


def test_closing_the_panel_stops_its_refresh_thread(orchestrators, panels, tmp_path):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=True, refresh_interval=0.25)
    handle = orch.run_async(one_step("watched", wait_for_file, f"wait for {tmp_path / 'x'}"))
    wait_until(lambda: panel.refreshing, 5, "the refresh thread to start")
    panel.close()
    wait_until(lambda: not panel.refreshing, 5, "the refresh thread to stop after close")
    orch.cancel(handle.mission_id)


def test_one_change_is_one_message_of_bounded_size(orchestrators, panels, tmp_path):
    orch = orchestrators(backend="thread", model="demo:fast")
    for i in range(200):
        orch.submit(Mission(f"queued {i}"))
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    with sent_messages(panel) as messages:
        panel.redraw()  # nothing changed: nothing sent
        assert messages == []
        orch.cancel(next(iter(orch.missions)))
        panel.redraw()
    assert len(messages) == 1
    assert len(messages[0]) < 8_000
    with sent_messages(panel) as messages:
        with panel._draw_lock:  # 40 changes reported while a draw would wait: coalesced
            for mission_id in list(orch.missions)[1:41]:
                orch.cancel(mission_id)
                panel.request_redraw()
        wait_until(lambda: len(messages) >= 1, 10, "the coalesced redraw")
    # A message per change would be 40; a busy machine may split them into a few draws.
    assert len(messages) <= 5


def test_the_snapshot_is_in_the_mimebundle_without_paths(orchestrators, panels):
    orch = orchestrators(backend="thread")
    orch.submit(one_step("<b>escaped</b> goal", quick))
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    bundle, _ = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert "&lt;b&gt;escaped&lt;/b&gt; goal" not in html  # queued: counted, not listed
    assert "1 queued" in html
    assert "0/1 [not started]" in html
    assert panel.snapshot_class in html and panel.view["snapshot_class"] == panel.snapshot_class
    store = str(orch.store.root)
    assert store not in html and store not in bundle["text/plain"]
    assert bundle["text/plain"] == "Missions: 0/1 [not started]"


def test_the_front_end_ships_beside_the_python(orchestrators):
    from mission_widgets.widgets import panel as module

    source = MissionPanel._esm if isinstance(MissionPanel._esm, str) else None
    assert (module._HERE / "panel.js").exists() and (module._HERE / "panel.css").exists()
    assert source is None or "export default" in source
    css = MissionPanel._css
    assert "--mw-failed:#c62828" in css and ".mw-row" in css


def test_bad_panel_options_are_refused(orchestrators):
    orch = orchestrators(backend="thread")
    with pytest.raises(ValueError, match="page_size"):
        MissionPanel(orch, page_size=0)
    with pytest.raises(ValueError, match="refresh_interval"):
        MissionPanel(orch, refresh_interval=0.01)
    with pytest.raises(ValueError, match="sort"):
        MissionPanel(orch, sort="random")


def wait_for_the_question(panel: MissionPanel, mission: Mission) -> None:
    """Wait until the mission's row asks for a decision. A mission that ends instead fails
    the test (it never asked: the very regression these tests are for), it does not skip."""

    def asking() -> bool:
        return mission.id in panel.view["questions"]

    def ended() -> bool:
        return mission.finished_at is not None

    settle(panel, lambda: asking() or ended(), "the row to ask for a decision")
    assert asking(), f"the mission ended {mission.status} instead of asking: {mission.error}"


def asking_in_a_panel(orchestrators, panels):
    """A panel and a mission whose first step fails and asks a person
    (waited for until the panel shows the question)."""
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
    return panel, mission


def test_a_waiting_mission_asks_in_its_row_and_the_answers_work(orchestrators, panels):
    panel, mission = asking_in_a_panel(orchestrators, panels)
    row = panel.row(mission.id)
    assert row["note"] == "waiting for you at step shaky"
    assert panel.header["ended"] == 0  # waiting is not over
    question = panel.view["questions"][mission.id]
    assert "Step shaky" in question and "call the shaky tool" in question
    assert "boom in call the shaky tool" in question  # its last errors
    assert row["cancellable"] is True
    browser_says(panel, action="explain", id=mission.id)
    assert panel.view["explanations"][mission.id]  # shown as an explanation
    browser_says(panel, action="decide", id=mission.id, decision="skip")
    assert panel.view["message"]["text"] == "skip: sent to \u201casks a person\u201d"
    settle(panel, lambda: mission.status == "succeeded", "the skipped mission to go on")
    assert mission.id not in panel.view["questions"]
    assert panel.row(mission.id)["note_kind"] != "waiting"


def test_abort_from_the_row_fails_the_waiting_mission(orchestrators, panels):
    orch = orchestrators(model="demo")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    mission = fails_at_once("asks then aborts", "shaky", "call the shaky tool", then="ask")
    orch.run_async(mission)
    wait_for_the_question(panel, mission)
    panel.decide(mission.id, "abort")
    settle(panel, lambda: mission.status == "failed", "the aborted mission to fail")
    assert panel.row(mission.id)["status"] == "failed"
    assert mission.id not in panel.view["questions"]
    panel.decide(mission.id, "maybe")
    assert "decision must be one of" in panel.view["message"]["text"]


def test_clear_finished_forgets_ended_missions_and_keeps_the_others(
    orchestrators, panels, tmp_path
):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    done = orch.run_async(one_step("ends quickly", quick))
    waiting = orch.run_async(one_step("still waiting", wait_for_file, f"wait {tmp_path / 'x'}"))
    settle(panel, lambda: done.mission.status == "succeeded", "the quick mission to end")
    browser_says(panel, action="clear_finished")
    assert "cleared 1 finished" in panel.view["message"]["text"]
    assert [r["id"] for r in panel.rows] == [waiting.mission_id]
    assert panel.header["ended"] == 0 and panel.header["total"] == 1
    orch.cancel(waiting.mission_id)


def test_worst_first_sort_and_the_full_goal(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast")
    long_goal = ("A goal long enough to be cut on one line " * 5).strip()
    first, second, third = (Mission(goal) for goal in ("first", long_goal, "third"))
    for mission in (first, second, third):
        orch.submit(mission)
    orch.cancel(first.id)  # cancelled before it started
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    assert [r["id"] for r in panel.view["rows"]] == [first.id]
    panel.show_queued()
    assert [r["id"] for r in panel.view["queued"]["rows"]] == [second.id, third.id]
    assert panel.row(second.id)["goal"] == long_goal  # the browser cuts it, with a title
    browser_says(panel, action="sort", sort="status")
    assert panel.view["sort"] == "status"
    browser_says(panel, action="wander")
    assert "unknown panel action 'wander'" in panel.view["message"]["text"]


def test_details_show_results_the_traceback_once_and_refresh_while_open(
    orchestrators, panels, tmp_path
):
    orch = orchestrators()
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    release = tmp_path / "release"
    mission = Mission(
        "two steps",
        steps=[
            MissionStep("first", "the first", executor=quick),
            MissionStep("second", f"wait for {release}", executor=wait_for_file),
        ],
    )
    orch.run_async(mission)
    settle(panel, lambda: mission.steps[1].progress == 0.5, "the second step to report")
    panel.show_details(mission.id)
    details = panel.view["details"][mission.id]
    assert "done: the first" in details  # the step's result, previewed
    assert 'mw-step-status">running<' in details
    release.touch()
    settle(panel, lambda: mission.status == "succeeded", "the mission to end")
    details = panel.view["details"][mission.id]  # open details follow the mission
    assert 'mw-step-status">running<' not in details
    assert "Result:</b> released" in details
    assert panel.row(mission.id)["note"] == "result: released"

    failing = fails_at_once("explodes", "kaboom", "blow up", then="abort")
    orch.run_async(failing)
    settle(panel, lambda: failing.status == "failed", "the mission to fail")
    panel.show_details(failing.id)
    details = panel.view["details"][failing.id]
    assert details.count("boom in blow up") == 2  # the attempt, and the traceback's last line
    assert details.count('class="mw-traceback"') == 1
    assert "Traceback (most recent call last):\n" in details  # its line breaks kept
    assert "in boom" in details


def test_a_skipped_step_reads_skipped_and_an_explanation_is_no_attempt(orchestrators, panels):
    panel, mission = asking_in_a_panel(orchestrators, panels)
    explanation = panel.explain(mission.id)
    assert panel.view["explanations"][mission.id] == explanation  # shown as such in the row
    panel.show_details(mission.id)
    details = panel.view["details"][mission.id]
    assert details.count("attempt 1") == 1 and "attempt 2" not in details
    panel.decide(mission.id, "skip")
    settle(panel, lambda: mission.status == "succeeded", "the skipped mission to go on")
    details = panel.view["details"][mission.id]
    assert 'mw-step-status">skipped<' in details and 'mw-step-status">done<' in details


def test_a_cell_that_changed_nothing_costs_the_kernel_no_compute(
    orchestrators, panels, monkeypatch
):
    """The post-run-cell hook (on the kernel's main thread, after every cell) computes
    nothing and rewrites no snapshot when no change came since the last snapshot; a
    change makes the next cell's snapshot show it."""
    import IPython.display

    orch = orchestrators(backend="thread")
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    updates: list[str] = []
    monkeypatch.setattr(
        IPython.display,
        "update_display",
        lambda bundle, raw, display_id: updates.append(bundle["text/html"]),
    )
    computes = []  # 1: a view computed, 2: a snapshot rendered
    real_compute = panel.compute

    def counted() -> dict:
        computes.append(1)
        return real_compute()

    monkeypatch.setattr(panel, "compute", counted)
    from mission_widgets.widgets import panel as module

    real_render = module.snapshot_html

    def rendered(view, **kwargs) -> str:
        computes.append(2)
        return real_render(view, **kwargs)

    monkeypatch.setattr(module, "snapshot_html", rendered)
    panel._display_id = "mission-panel-test"  # as _ipython_display_ leaves it
    panel._after_cell()  # the first cell after the display: brings the snapshot up to date
    assert "no missions yet" in updates[-1]
    before = (len(computes), len(updates))
    for _ in range(5):
        panel._after_cell()
    assert (len(computes), len(updates)) == before

    orch.submit(one_step("a queued goal", quick))  # reported: request_redraw
    panel._after_cell()
    assert "1 queued" in updates[-1]
