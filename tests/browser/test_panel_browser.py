"""MissionPanel in a real browser: JupyterLab + Debian Chromium driven by Playwright.

One notebook (written into the server root) creates an orchestrator on a temporary store,
shows ``orch.panel()`` and starts subprocess missions whose executors report progress and
wait for marker files that the test creates. The tests read what a user sees in the DOM
(ipywidgets 8: bar width and style, labels, the stall badge) and click the panel's buttons.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from support.lab import (
    BAR,
    PANEL,
    ROW,
    STALL_BADGE,
    JupyterLab,
    chromium_missing_reason,
    launch_chromium,
    open_notebook,
    run_all_cells,
)

from mission_widgets import MissionOrchestrator

MISSING = chromium_missing_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]

# Fixtures live in this file and helpers in tests/support/lab.py.
ARTIFACTS = (
    Path(os.environ.get("MW_ARTIFACTS") or Path(__file__).resolve().parents[2] / "artifacts")
    / "browser"
)
CANCELLED_RGB = "rgb(106, 27, 154)"  # STATUS_STYLES["cancelled"].colour, as the browser says it


def save_artifact(page, name: str) -> None:
    """A screenshot at a fixed moment, kept as a CI artefact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / name, full_page=True)


UI_TIMEOUT = 30_000  # ms; generous for a loaded CI machine, the happy path takes ~1 s

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

START = """\
for goal, executor in [("Grow step by step", grows), ("Keep going until cancelled", keeps_going),
                       ("Get stuck quietly", stuck_quietly), ("Crash the tool", crashes)]:
    orch.run_async(one_step(goal, executor))
orch.run_async(ASKS)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = JupyterLab(tmp_path_factory.mktemp("lab")).start()
    try:
        yield server
    finally:
        for store in server.root.glob("store-*"):  # workers outlive kernels: stop them here
            leftover = MissionOrchestrator(store=store)
            try:
                leftover.cancel_all()
            finally:
                leftover.close()
        server.stop()


@pytest.fixture(scope="module", params=["lab", "notebook"])
def ui(request):
    """Each test runs in JupyterLab and in Notebook 7 (same server, same panel)."""
    return request.param


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def markers(lab, ui):
    """Where the notebook's executors look for the files that let them go on."""
    path = lab.root / f"markers-{ui}"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def page(lab, browser, markers, ui):
    """The notebook opened, all cells run, the panel on screen with four missions."""
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
        expect(page.locator(f"{ROW}:visible")).to_have_count(5)
        save_artifact(page, f"{ui}-started.png")
        # The notebook's kernel is this venv's interpreter (the kernelspec in JUPYTER_PATH).
        commands = [cmd[:3] for cmd in lab.kernel_commands()]
        assert commands
        assert all(cmd == [sys.executable, "-m", "ipykernel_launcher"] for cmd in commands)
        yield page
    finally:
        context.close()


@pytest.fixture
def screenshot(request, tmp_path):
    """``screenshot(page)``: after the test the page is saved as ``tmp_path/<test>.png``;
    if the test failed, also copied to ``artifacts/browser/`` (gitignored) for CI."""
    pages = []
    failures_before = request.session.testsfailed
    yield pages.append
    # The call phase is reported (and counted) before fixtures are torn down.
    failed = request.session.testsfailed > failures_before
    for page in pages:
        if page.is_closed():
            continue
        path = tmp_path / f"{request.node.name}.png"
        page.screenshot(path=path, full_page=True)
        if failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, ARTIFACTS / path.name)


def row(page, goal: str):
    return page.locator(ROW).filter(has_text=goal)


def test_progress_bar_grows_then_turns_success(page, markers, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Grow step by step")
    bar = mission.locator(BAR)
    expect(bar).to_have_class(re.compile(r"\bprogress-bar-info\b"))
    expect(bar).to_have_attribute("style", re.compile(r"width: 30%"))
    (markers / "grow-1").touch()
    expect(bar).to_have_attribute("style", re.compile(r"width: 60%"))
    (markers / "grow-2").touch()
    expect(bar).to_have_class(re.compile(r"\bprogress-bar-success\b"))
    expect(bar).to_have_attribute("style", re.compile(r"width: 100%"))
    expect(mission).to_contain_text("\u2714 succeeded")
    expect(mission).to_contain_text("1/1 steps")
    # Nothing left to cancel: no Cancel button on a finished row.
    expect(mission.locator("button.jupyter-button", has_text="Cancel")).to_be_hidden()


def test_poll_button_shows_what_it_found(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    poll = page.locator("button.jupyter-button", has_text="Poll")
    poll.click()
    expect(page.locator(PANEL)).to_contain_text(re.compile(r"polled: \d+ finished, \d+ running"))
    expect(poll).to_be_enabled()


def test_cancel_marks_the_row_cancelled_not_failed(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Keep going until cancelled")
    bar = mission.locator(BAR)
    expect(bar).to_have_class(re.compile(r"\bprogress-bar-info\b"))
    expect(bar).to_have_attribute("style", re.compile(r"width: 40%"))
    cancel = mission.locator("button.jupyter-button", has_text="Cancel")
    cancel.click()
    # Cancelled is not failed: its own colour and symbol.
    expect(mission).to_contain_text("\u2298 cancelled")
    expect(bar).to_have_css("background-color", CANCELLED_RGB)
    expect(bar).not_to_have_class(re.compile(r"\bprogress-bar-danger\b"))
    expect(cancel).to_be_hidden()
    expect(page.locator(PANEL)).to_contain_text("cancelled mission_")


def test_stall_badge_appears_for_a_mission_without_progress(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Get stuck quietly")
    badge = mission.locator(STALL_BADGE)
    expect(badge).to_be_visible()
    expect(badge).to_contain_text(re.compile(r"stalled: no progress for \d+ s"))
    expect(mission.locator(BAR)).to_have_class(re.compile(r"\bprogress-bar-warning\b"))
    expect(mission).to_contain_text("stalled")
    # The healthy rows never get a badge.
    expect(row(page, "Keep going until cancelled").locator(STALL_BADGE)).to_be_hidden()
    # Flagged stalled, its worker still runs: the user can still stop it.
    cancel = mission.locator("button.jupyter-button", has_text="Cancel")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(mission).to_contain_text("\u2298 cancelled")
    expect(badge).to_have_count(0)  # a stall that ended otherwise keeps no badge
    expect(cancel).to_be_hidden()


def test_a_failed_mission_is_danger_with_its_error_in_the_details(page, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Crash the tool")
    expect(mission.locator(BAR)).to_have_class(re.compile(r"\bprogress-bar-danger\b"))
    expect(mission).to_contain_text("\u2716 failed")
    # The cause is on the row itself, not behind Details.
    expect(mission.locator(".mission-widgets-error")).to_contain_text("the tool crashed")
    mission.locator("button", has_text="Details").click()
    expect(mission.locator(".mission-widgets-error").first).to_be_visible()
    expect(mission).to_contain_text("Log (tail)")


def test_a_person_answers_a_waiting_mission_from_its_row(page, ui, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    mission = row(page, "Ask a person")
    expect(mission).to_contain_text("waiting for you")
    decision = mission.locator(".mission-widgets-decision")
    expect(decision).to_contain_text("call the shaky tool")
    expect(decision).to_contain_text("the shaky tool broke")
    decision.locator("button.jupyter-button", has_text="Explain").click()
    expect(mission.locator(".mission-widgets-explanation")).to_be_visible()
    save_artifact(page, f"{ui}-decision.png")
    decision.locator("button.jupyter-button", has_text="Skip").click()
    expect(mission).to_contain_text("\u2714 succeeded")
    expect(decision).to_be_hidden()


def test_enter_submits_and_the_newest_mission_is_on_top(page, ui, screenshot):
    from playwright.sync_api import expect

    screenshot(page)
    goal = page.locator(f"{PANEL} input[type=text]").first
    goal.fill("Typed then Enter")
    goal.press("Enter")
    expect(page.locator(ROW).first).to_contain_text("Typed then Enter")
    expect(row(page, "Typed then Enter")).to_contain_text("\u2714 succeeded")
    expect(goal).to_have_value("")
    expect(page.locator(PANEL)).to_contain_text(re.compile(r"\d+/6 ended"))
    save_artifact(page, f"{ui}-after-enter.png")


SAVED_SETUP = """\
from mission_widgets import Mission, MissionOrchestrator, MissionStep

def quick(task, session, context):
    return "done: " + task

orch = MissionOrchestrator(max_concurrent=3, store={store!r})
"""
SAVED_SHOW = "panel = orch.panel()\npanel"
SAVED_RUN = """\
handles = [orch.run_async(Mission(f"saved mission {i}",
                                  steps=[MissionStep("s", "quick", executor=quick)]))
           for i in range(3)]
[str(h.wait(timeout=60).status) for h in handles]
"""


@pytest.fixture(scope="module")
def saved_notebook(lab, tmp_path_factory):
    """A notebook run by a real kernel (nbclient) and saved with its widget state, as a
    user's notebook is saved: the panel shown first, the missions run and end after it."""
    import nbformat
    from support.kernel import KernelSession

    work = tmp_path_factory.mktemp("saved")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    store = lab.root / "store-saved"
    nb.cells = [
        nbformat.v4.new_code_cell(source)
        for source in (SAVED_SETUP.format(store=str(store)), SAVED_SHOW, SAVED_RUN)
    ]
    session = KernelSession(nb, work)
    with session.started():
        for index in range(len(nb.cells)):
            session.run(index)
        session.run_source("panel.close(); orch.close()")
    nb.cells.pop()  # the clean-up cell is not part of what the user saved
    path = lab.root / "saved.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_reopened_saved_notebook_shows_the_final_state(
    lab, browser, ui, saved_notebook, screenshot
):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    try:
        # A new kernel knows none of the saved widget models: the cell must still show
        # the missions as they ended (the snapshot, or the widgets from the saved state).
        open_notebook(page, lab, saved_notebook.name, ui=ui)
        screenshot(page)
        cell = page.locator(".jp-Cell").filter(has_text=SAVED_SHOW.splitlines()[0])
        expect(cell).to_contain_text("3/3 ended")
        expect(cell).not_to_contain_text("children=")  # no widget repr dumped as text
        save_artifact(page, f"{ui}-reopened.png")
        for i in range(3):
            mission = cell.locator("tr, .mission-widgets-row").filter(has_text=f"saved mission {i}")
            expect(mission.first).to_contain_text("succeeded")
        # Whatever renders keeps its buttons whole (no "Can..." cut by a saved layout).
        for button in cell.locator("button.jupyter-button:visible").all():
            assert button.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), button.inner_text()
    finally:
        context.close()


def test_reopened_without_a_kernel_with_widget_state_saved_shows_the_final_state(
    lab, browser, saved_notebook
):
    """JupyterLab with "save widget state" on, the notebook reopened with no kernel at all:
    the cell shows the missions as they ended, no widget error, and no button cut short."""
    from playwright.sync_api import expect

    settings = (
        lab.base
        / "config/lab/user-settings/@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings"
    )
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"saveState": True}))
    saved = json.loads(saved_notebook.read_text())
    saved["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "gone"}
    stateful = lab.root / "saved-no-kernel.ipynb"
    stateful.write_text(json.dumps(saved))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    try:
        page.goto(lab.notebook_url(stateful.name))
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Select Kernel")
        page.keyboard.press("Escape")  # dismissed: the notebook stays without a kernel
        expect(dialog).to_have_count(0)
        cell = page.locator(".jp-Cell").filter(has_text=SAVED_SHOW.splitlines()[0])
        expect(cell).to_contain_text("3/3 ended")
        save_artifact(page, "lab-no-kernel-saved-state.png")
        expect(cell).not_to_contain_text("Error displaying widget")
        # Where the widgets do render from the saved state, no button is cut short.
        for button in cell.locator("button.jupyter-button:visible").all():
            assert button.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), button.inner_text()
    finally:
        context.close()
        settings.unlink()
