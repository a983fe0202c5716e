"""The panel's Timeline view through its Python API: the picture ``orch.timeline()`` draws,
synced as ``timeline_html`` only while the view is open, redrawn (coalesced) when events
arrive and while missions run, never when nothing changed."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest
from support.widget_tasks import hang_quietly, quick, wait_for_file
from support.widgets import browser_says, sent_messages, wait_until
from traitlets import TraitError

from mission_widgets import Mission, MissionStep
from mission_widgets.widgets.panel_timeline import TIMELINE_INTERVAL


def one_step(goal: str, executor, description: str = "the step") -> Mission:
    return Mission(goal, steps=[MissionStep("only", description, executor=executor)])


def segments(html: str) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    """Every attempt segment of a Timeline's HTML: (mission, step, attempt) -> (start,
    end, outcome), read from its SVGs as a parser does."""
    found = {}
    for chunk in html.split("<svg")[1:]:
        root = ET.fromstring("<svg" + chunk.split("</svg>")[0] + "</svg>")
        for el in root.iter():
            if "attempt" in (el.get("class") or "").split():
                key = (el.get("data-mission"), el.get("data-step"), el.get("data-attempt"))
                found[key] = (el.get("data-start"), el.get("data-end"), el.get("data-outcome"))
    return found


def finished_panel(orchestrators, panels, n: int = 2):
    orch = orchestrators(backend="thread")
    handles = [orch.run_async(one_step(f"quick {i}", quick)) for i in range(n)]
    for handle in handles:
        handle.wait(30)
    panel = orch.panel(auto_refresh=True)
    panels.append(panel)
    return orch, panel, handles


def test_the_timeline_is_drawn_only_while_its_view_is_open(orchestrators, panels):
    orch, panel, _ = finished_panel(orchestrators, panels)
    assert panel.view_mode == "list"
    orch.run_async(one_step("while closed", quick)).wait(30)
    panel.request_redraw()
    wait_until(lambda: len(panel.rows) == 3, 20, "the rows to show the third mission")
    assert panel.timeline_html == ""
    assert panel.timeline_view.draws == 0  # closed: no picture drawn at all
    assert not panel.timeline_view.refreshing  # and no thread

    panel.show_timeline(True)
    assert panel.view_mode == "timeline"
    drawn = segments(panel.timeline_html)
    assert drawn == segments(orch.timeline().to_html())
    assert len(drawn) == 3
    assert {outcome for _, _, outcome in drawn.values()} == {"succeeded"}
    assert {mission for mission, _, _ in drawn} == set(orch.missions)

    panel.show_timeline(False)
    assert panel.timeline_html == ""  # nothing of it is kept in the widget's state
    draws = panel.timeline_view.draws
    orch.run_async(one_step("closed again", quick)).wait(30)
    panel.request_redraw()
    wait_until(lambda: len(panel.rows) == 4, 20, "the rows to show the fourth mission")
    assert panel.timeline_view.draws == draws
    assert panel.timeline_html == ""


def test_a_new_event_redraws_the_open_timeline_and_no_change_draws_nothing(
    orchestrators, panels, tmp_path
):
    orch, panel, _ = finished_panel(orchestrators, panels)
    panel.show_timeline(True)
    with sent_messages(panel) as messages:
        assert panel.timeline_view.refresh() is False  # nothing changed, nothing runs
        panel.request_redraw()
        wait_until(lambda: not panel.timeline_view.refreshing, 20, "the coalescer to settle")
    assert not any("timeline_html" in message for message in messages)

    release = tmp_path / "go"
    started = time.monotonic()
    draws = panel.timeline_view.draws
    handle = orch.run_async(one_step("new one", wait_for_file, f"wait for {release}"))

    def drawn_running() -> bool:
        return any(
            mission == handle.mission_id and outcome == "running"
            for (mission, _, _), (_, _, outcome) in segments(panel.timeline_html).items()
        )

    wait_until(drawn_running, 20, "the open timeline to draw the new mission's running step")
    release.touch()
    handle.wait(30)

    def drawn_done() -> bool:
        return segments(panel.timeline_html) == segments(orch.timeline().to_html())

    wait_until(drawn_done, 20, "the open timeline to draw the new mission's end")
    elapsed = time.monotonic() - started
    # Coalesced: at most one picture per interval, however many events arrived.
    assert panel.timeline_view.draws - draws <= elapsed / TIMELINE_INTERVAL + 2
    wait_until(lambda: not panel.timeline_view.refreshing, 20, "the redraws to stop when idle")


def test_while_a_mission_runs_the_now_line_moves_on_without_events(orchestrators, panels):
    orch = orchestrators(backend="thread")
    panel = orch.panel(auto_refresh=True)
    panels.append(panel)
    handle = orch.run_async(one_step("hangs quietly", hang_quietly))
    wait_until(lambda: orch.get(handle.mission_id).status == "running", 20, "the mission to run")
    panel.show_timeline(True)

    def drawn_running() -> bool:
        drawn = segments(panel.timeline_html)
        return [outcome for _, _, outcome in drawn.values()] == ["running"]

    # After its step started, the mission writes no event while it hangs.
    wait_until(drawn_running, 20, "the running step in the picture")
    seq = orch.store.max_seq()
    first = panel.timeline_view.drawn_at
    wait_until(
        lambda: panel.timeline_view.drawn_at > first + TIMELINE_INTERVAL,
        30,
        "the picture to be redrawn later with no new event",
    )
    assert orch.store.max_seq() == seq  # it moved on with no new event
    assert 'class="now"' in panel.timeline_html
    orch.cancel(handle.mission_id)
    wait_until(lambda: not panel.timeline_view.refreshing, 20, "the redraws to stop")


def test_the_browser_tab_and_pages_drive_the_view(orchestrators, panels):
    orch = orchestrators(backend="thread", model="demo:fast")
    for i in range(55):  # queued, never run: 55 rows of the picture, two pages of 50
        orch.submit(Mission(f"queued {i}"))
    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    panel.set_state({"view_mode": "timeline"})  # what the browser's tab sends
    assert panel.timeline_pages == 2 and panel.timeline_page == 1
    assert "missions 1-50" in panel.timeline_html
    browser_says(panel, action="timeline_page", page=2)
    assert panel.timeline_page == 2
    assert "missions 51-55" in panel.timeline_html
    browser_says(panel, action="timeline_page", page=3)
    assert panel.view["message"]["kind"] == "error"
    assert "timeline page must be 1..2, got 3" in panel.view["message"]["text"]
    assert panel.timeline_page == 2
    with pytest.raises(TraitError, match="view_mode"):
        panel.view_mode = "gantt"
    panel.set_state({"view_mode": "list"})
    assert panel.timeline_html == ""


def test_closing_the_panel_stops_the_timeline_redraws(orchestrators, panels):
    orch = orchestrators(backend="thread")
    panel = orch.panel(auto_refresh=True)
    handle = orch.run_async(one_step("hangs quietly", hang_quietly))
    panel.show_timeline(True)
    wait_until(lambda: panel.timeline_view.refreshing, 20, "the timeline to follow the run")
    panel.close()
    wait_until(lambda: not panel.timeline_view.refreshing, 20, "its thread to end")
    draws = panel.timeline_view.draws
    panel.request_redraw()
    assert panel.timeline_view.draws == draws
    orch.cancel(handle.mission_id)
