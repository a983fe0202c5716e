"""MissionPanel in a real browser: JupyterLab 4 and Notebook 7, Debian Chromium + Playwright.

One notebook (written into the server root) creates an orchestrator on a temporary store,
shows ``orch.panel()`` and starts subprocess missions whose executors report progress and
wait for marker files that the test creates. The tests read what a user sees (the DOM that
``panel.js`` draws: bars with their ARIA values, status words, pinned rows, the header) and
click the panel's buttons. Screenshots at fixed moments go to ``$MW_ARTIFACTS/browser``.
"""

from __future__ import annotations

import re
import sys

import pytest
from support.browser import (
    ARTIFACTS,
    UI_TIMEOUT,
    buttons_fit,
    contrast_failures,
    save_artifact,
)
from support.lab import BAR, PANEL, PINNED, ROW, open_notebook, run_all_cells

pytestmark = [pytest.mark.browser]

SETUP = """\
import pathlib, time
from mission_widgets import Mission, MissionOrchestrator, MissionStep, report_progress

MARKERS = pathlib.Path({markers!r})

def wait_for(name, fraction):
    # Reports while it waits (10x within no_progress_secs), so it never looks stalled.
    while not (MARKERS / name).exists():
        report_progress(fraction, "waiting for " + name)
        time.sleep(0.1)

def grows(task, session, context):
    wait_for("grow-1", 0.3)
    wait_for("grow-2", 0.6)
    return "grown"

def keeps_going(task, session, context):
    while True:
        report_progress(0.4, "still working")
        time.sleep(0.1)

def stuck_quietly(task, session, context):
    report_progress(0.2, "about to get stuck")
    while True:
        time.sleep(0.2)

def crashes(task, session, context):
    raise RuntimeError("the tool crashed")

def shaky(task, session, context):
    raise RuntimeError("the shaky tool broke")

def finish(task, session, context):
    return "finished"

ASKS = Mission("Ask a person", steps=[MissionStep("shaky", "call the shaky tool", executor=shaky,
                                                  max_retries=0),
                                      MissionStep("after", "wrap up", executor=finish,
                                                  depends_on=["shaky"])],
               stall_policy={{"on_max_retries": "ask"}})

def one_step(goal, executor):
    return Mission(goal, steps=[MissionStep("work", goal, executor=executor, max_retries=0)],
                   stall_policy={{"on_max_retries": "abort"}})

orch = MissionOrchestrator(max_concurrent=8, model="demo:fast", store={store!r})
"""

SHOW = """\
panel = orch.panel(refresh_interval=0.25, no_progress_secs=1, reconcile_every_secs=0.5)
panel
"""

ARABIC = "تحليل بيانات الطلاب في الفصل الدراسي الأول وكتابة تقرير مفصل عن النتائج والتوصيات"

START = f"""\
for goal, executor in [("Grow step by step", grows), ("Keep going until cancelled", keeps_going),
                       ("Get stuck quietly", stuck_quietly), ("Crash the tool", crashes),
                       ({ARABIC!r}, keeps_going)]:
    orch.run_async(one_step(goal, executor))
orch.run_async(ASKS)
"""


@pytest.fixture(scope="module", params=["lab", "notebook"])
def ui(request):
    """Each test runs in JupyterLab and in Notebook 7 (same server, same panel)."""
    return request.param


@pytest.fixture(scope="module")
def markers(lab, ui):
    """Where the notebook's executors look for the files that let them go on."""
    path = lab.root / f"markers-{ui}"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def page(lab, browser, markers, ui):
    """The notebook opened, all cells run, the panel on screen with six missions."""
    from playwright.sync_api import expect

    setup = SETUP.format(markers=str(markers), store=str(lab.root / f"store-{ui}"))
    name = f"panel-{ui}.ipynb"
    lab.write_notebook(name, [setup, SHOW, START])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)  # actions (click)
    expect.set_options(timeout=UI_TIMEOUT)  # expect(...) assertions (default 5 s)
    try:
        open_notebook(page, lab, name, ui=ui)
        run_all_cells(page)
        expect(page.locator(PANEL)).to_be_visible()
        expect(page.locator(ROW)).to_have_count(6)
        save_artifact(page, f"{ui}-started.png")
        # The notebook's kernel is this venv's interpreter (the kernelspec in JUPYTER_PATH).
        commands = [cmd[:3] for cmd in lab.kernel_commands()]
        assert commands
        assert all(cmd == [sys.executable, "-m", "ipykernel_launcher"] for cmd in commands)
        yield page
    finally:
        context.close()


def row(page, goal: str):
    return page.locator(ROW).filter(has_text=goal)


def test_the_live_panel_hides_its_snapshot_and_shows_no_widget_error(page):
    from playwright.sync_api import expect

    expect(page.locator(".mission-widgets-static")).to_be_hidden()
    expect(page.locator(PANEL)).not_to_contain_text("Saved view")
    expect(page.locator(".jp-Notebook")).not_to_contain_text("Error displaying widget")
    expect(page.locator(".jp-Notebook")).not_to_contain_text("Loading widget")


def test_progress_bar_grows_then_turns_succeeded(page, markers, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Grow step by step")
    bar = mission.locator(BAR)
    expect(mission).to_have_attribute("data-status", "running")
    expect(bar).to_have_attribute("aria-valuenow", "30")
    expect(mission.locator(".mw-line2")).to_have_text("waiting for grow-1")  # its message
    (markers / "grow-1").touch()
    expect(bar).to_have_attribute("aria-valuenow", "60")
    (markers / "grow-2").touch()
    expect(mission).to_have_attribute("data-status", "succeeded")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(mission.locator(".mw-status")).to_have_text("\u2714 succeeded")
    expect(mission.locator(".mw-steps")).to_have_text("1/1")
    # Nothing left to cancel: no Cancel button on a finished row.
    expect(mission.locator("button.mw-cancel")).to_have_count(0)


def test_the_header_clock_ticks_in_the_browser(page):
    from playwright.sync_api import expect

    meter = page.locator(f"{PANEL} .mw-meter")
    expect(meter).to_have_text(re.compile(r"^\d+/\d+ \[\d\d:\d\d"))
    first = meter.inner_text()
    # Missions keep running but nothing changes: only the browser's clock moves it.
    expect(meter).not_to_have_text(first, timeout=5_000)
    stack = page.locator(f"{PANEL} .mw-stack")
    expect(stack).to_have_attribute("role", "progressbar")
    expect(stack).to_have_attribute("aria-valuemax", re.compile(r"^\d+$"))


def test_poll_button_shows_what_it_found(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    page.locator("button.mw-poll").click()
    message = page.locator(f"{PANEL} .mw-message")
    expect(message).to_have_text(re.compile(r"polled: \d+ finished, \d+ running"))
    expect(page.locator("button.mw-poll")).to_be_enabled()


def test_cancel_marks_the_row_cancelled_not_failed(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Keep going until cancelled")
    expect(mission.locator(BAR)).to_have_attribute("aria-valuenow", "40")
    mission.locator("button.mw-cancel").click()
    # Cancelled is not failed: its own colour and symbol.
    expect(mission).to_have_attribute("data-status", "cancelled")
    expect(mission.locator(".mw-status")).to_have_text("\u2298 cancelled")
    fill, word = mission.evaluate(
        "r => [getComputedStyle(r.querySelector('.mw-fill')).backgroundColor,"
        " getComputedStyle(r.querySelector('.mw-status')).color]"
    )
    failed = row(page, "Crash the tool").evaluate(
        "r => getComputedStyle(r.querySelector('.mw-status')).color"
    )
    assert fill == word != failed  # its own colour, in the bar and the word
    expect(mission.locator("button.mw-cancel")).to_have_count(0)
    expect(page.locator(f"{PANEL} .mw-message")).to_have_text(
        "cancelled \u201cKeep going until cancelled\u201d"
    )


def test_a_hung_mission_is_pinned_with_its_reason_and_can_be_cancelled(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    page.locator("button.mw-poll").click()  # checks health now (besides the panel's clock)
    mission = page.locator(PINNED).locator(ROW).filter(has_text="Get stuck quietly")
    expect(mission.locator(".mw-line2")).to_contain_text("no progress")
    expect(row(page, "Grow step by step")).not_to_contain_text("no progress")
    cancel = mission.locator("button.mw-cancel")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(row(page, "Get stuck quietly")).to_have_attribute("data-status", "cancelled")
    expect(row(page, "Get stuck quietly")).not_to_contain_text("no progress")


def test_a_failed_mission_is_pinned_with_its_error_and_its_details(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = page.locator(PINNED).locator(ROW).filter(has_text="Crash the tool")
    expect(mission).to_have_attribute("data-status", "failed")
    expect(mission.locator(".mw-status")).to_have_text("\u2716 failed")
    expect(mission.locator(".mw-line2")).to_contain_text("the tool crashed")
    mission.locator("button.mw-details-toggle").click()
    details = mission.locator(".mw-details")
    expect(details).to_contain_text("Log (tail)")
    expect(mission.locator("button.mw-details-toggle")).to_have_attribute("aria-expanded", "true")


def test_a_person_answers_a_waiting_mission_from_its_row(page, ui, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = page.locator(PINNED).locator(ROW).filter(has_text="Ask a person")
    expect(mission).to_have_attribute("data-status", "waiting")
    expect(mission.locator(".mw-line2")).to_have_text("waiting for you at step shaky")
    question = mission.locator(".mw-question")
    expect(question).to_contain_text("call the shaky tool")
    expect(question).to_contain_text("the shaky tool broke")
    question.locator("button.mw-explain").click()
    expect(mission.locator(".mw-explanation")).to_contain_text("Explanation")
    save_artifact(page, f"{ui}-decision.png")
    question.locator("button.mw-skip").click()
    done = row(page, "Ask a person")
    expect(done).to_have_attribute("data-status", "succeeded")
    expect(done.locator(".mw-question")).to_have_count(0)


def test_a_right_to_left_goal_keeps_its_start_and_ends_with_an_ellipsis(page):
    goal = row(page, ARABIC[:20]).locator(".mw-goal-text")
    assert goal.get_attribute("dir") == "auto"
    assert goal.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert goal.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"


@pytest.mark.parametrize("width", [None, 900, 600, 420])
def test_nothing_is_clipped_from_narrow_to_full_width(page, ui, width):
    """The panel at the notebook's full width, then held at 900, 600 and 420 px (a narrow
    notebook beside a sidebar): every control whole, nothing wider than the panel."""
    panel = page.locator(PANEL)
    panel.locator(ROW).first.wait_for()
    if width is not None:
        panel.evaluate(f"e => {{ e.style.width = '{width}px'; }}")
    try:
        assert panel.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the panel scrolls"
        assert buttons_fit(panel) == []
        widths = panel.evaluate(
            "e => [...e.querySelectorAll('.mw-goal-text')].map(g => g.clientWidth)"
        )
        assert widths and min(widths) >= 60, widths  # room for words
        save_artifact(page, f"{ui}-{width or 'full'}px.png")
    finally:
        panel.evaluate("e => { e.style.width = ''; }")


def test_notebook_at_800_px_keeps_every_column(page, ui):
    page.set_viewport_size({"width": 800, "height": 1000})
    try:
        panel = page.locator(PANEL)
        assert panel.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the panel scrolls"
        assert buttons_fit(panel) == []
        first = panel.locator(ROW).first
        for part in (".mw-status", ".mw-goal-text", BAR, ".mw-time"):
            assert first.locator(part).first.is_visible(), part
        save_artifact(page, f"{ui}-800px-window.png")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_text_contrast_is_at_least_4_5_to_1(page):
    assert contrast_failures(page.locator(PANEL)) == []


def test_enter_submits_and_the_message_names_the_goal(page, ui, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    goal = page.locator(f"{PANEL} input.mw-goal")
    expect(goal).to_have_attribute("aria-label", "Goal of a new mission")
    goal.fill("Typed then Enter")
    goal.press("Enter")
    expect(row(page, "Typed then Enter")).to_have_attribute("data-status", "succeeded")
    expect(goal).to_have_value("")
    expect(page.locator(f"{PANEL} .mw-message")).to_have_text(
        "started \u201cTyped then Enter\u201d"
    )
    expect(page.locator(f"{PANEL} .mw-meter")).to_have_text(re.compile(r"^\d+/7 \["))
    save_artifact(page, f"{ui}-after-enter.png")


def test_at_once_refuses_zero_visibly(page):
    from playwright.sync_api import expect

    box = page.locator(f"{PANEL} input.mw-at-once")
    box.fill("0")
    box.press("Enter")
    expect(page.locator(f"{PANEL} .mw-message")).to_contain_text("at least 1")
    box.blur()
    expect(box).to_have_value("8")
    assert ARTIFACTS.name == "browser"


def test_the_timeline_tab_draws_the_bars_and_keeps_them_current(page, ui):
    from playwright.sync_api import expect

    tabs = page.locator(f"{PANEL} [role=tablist]")
    expect(tabs).to_have_attribute("aria-label", "Show the missions as")
    listed, timeline = tabs.locator(".mw-tab-list"), tabs.locator(".mw-tab-timeline")
    expect(timeline).to_have_attribute("aria-selected", "false")
    listed.focus()
    page.keyboard.press("Tab")  # the keyboard alone opens it
    expect(timeline).to_be_focused()
    page.keyboard.press("Enter")
    expect(timeline).to_have_attribute("aria-selected", "true")
    expect(timeline).to_be_focused()
    view = page.locator(f"{PANEL} .mw-timeline-view")
    expect(view).to_be_visible()
    expect(page.locator(f"{PANEL} .mw-list-view")).to_be_hidden()
    bars = view.locator("svg rect.attempt")
    expect(bars.first).to_be_visible()
    assert bars.count() >= 6  # the six missions' attempts, at least one each
    expect(view).to_contain_text(re.compile(r"Timeline of \d+ missions"))
    expect(view.locator("line.now").first).to_be_attached()
    # Kept current while a mission runs: its bar's tooltip says it has run for longer.
    running = view.locator("rect.attempt.running title").first
    before = running.text_content()
    expect(running).not_to_have_text(before)
    save_artifact(page, f"{ui}-timeline.png")
    listed.click()
    expect(page.locator(f"{PANEL} .mw-list-view")).to_be_visible()
    expect(view).to_be_hidden()
    expect(listed).to_have_attribute("aria-selected", "true")
