"""The panel where no live kernel draws it, and outside Jupyter: a saved notebook reopened
(with and without a kernel, with and without saved widget state), its nbconvert HTML page,
and marimo (``marimo run`` on a notebook that shows the panel; its buttons work).

Each view is read in Debian Chromium as a person sees it: the totals and every mission that
needs attention are there; no widget error line, no broken image, no local path.
Screenshots at fixed moments go to ``$MW_ARTIFACTS/browser``.
"""

from __future__ import annotations

import copy
import json
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from support.browser import UI_TIMEOUT, save_artifact
from support.lab import HOST, PANEL, ROW, SNAPSHOT, free_port, open_notebook
from support.waiting import wait_for

pytestmark = [pytest.mark.browser]

SAVED_SETUP = """\
from mission_widgets import Mission, MissionOrchestrator, MissionStep

def quick(task, session, context):
    return "done: " + task

def breaks(task, session, context):
    raise RuntimeError("the saved failure")

orch = MissionOrchestrator(max_concurrent=3, store={store!r})
"""
SAVED_SHOW = "panel = orch.panel()\npanel"
SAVED_RUN = """\
missions = [Mission(f"saved mission {i}", steps=[MissionStep("s", "quick", executor=quick)])
            for i in range(3)]
missions.append(Mission("saved failure", steps=[MissionStep("s", "x", executor=breaks,
                                                            max_retries=0)],
                        stall_policy={"on_max_retries": "abort"}))
handles = [orch.run_async(m) for m in missions]
[str(h.wait(timeout=60).status) for h in handles]
"""
WIDGET_ERRORS = ("Error displaying widget", "model not found", "Loading widget")


@pytest.fixture(scope="module")
def saved(lab, tmp_path_factory):
    """A notebook run by a real kernel (nbclient) and saved with its widget state, as a
    user's notebook is saved; and the store path it used (which no view may show)."""
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
    nb.cells[0].source = "# (setup)"  # the store path stays out of what the page shows
    assert "widgets" in nb.metadata  # nbclient saved the widget state
    return nb, str(store)


def write(lab, name: str, nb, *, state: bool, kernel: bool) -> str:
    data = copy.deepcopy(dict(nb))
    data["metadata"] = copy.deepcopy(dict(nb.metadata))
    if not state:
        data["metadata"].pop("widgets", None)
    if not kernel:
        data["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "gone"}
    (lab.root / name).write_text(json.dumps(data))
    return name


def panel_cell(page):
    return page.locator(".jp-Cell").filter(has_text=SAVED_SHOW.splitlines()[0])


def check_reads_right(cell, store: str) -> None:
    """Totals, every mission that needs attention, no widget error, no path, no broken img."""
    from playwright.sync_api import expect

    expect(cell).to_contain_text("4/4 [")
    expect(cell).to_contain_text("saved failure")
    expect(cell).to_contain_text("the saved failure")
    for text in WIDGET_ERRORS:
        expect(cell).not_to_contain_text(text)
    assert store not in cell.inner_text()
    broken = cell.evaluate(
        "c => [...c.querySelectorAll('img')].filter(i => !i.complete || !i.naturalWidth).length"
    )
    assert broken == 0


@pytest.fixture
def context(browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT)
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    context.set_default_timeout(UI_TIMEOUT)
    yield context
    context.close()


@pytest.mark.parametrize("state", [True, False], ids=["with-state", "without-state"])
def test_a_saved_notebook_reopened_with_a_kernel_reads_right(lab, context, saved, state):
    nb, store = saved
    name = write(lab, f"reopened-{state}.ipynb", nb, state=state, kernel=True)
    page = context.new_page()
    open_notebook(page, lab, name)
    cell = panel_cell(page)
    check_reads_right(cell, store)
    save_artifact(page, f"reopened-kernel-{'state' if state else 'no-state'}.png")


@pytest.mark.parametrize("state", [True, False], ids=["with-state", "without-state"])
def test_a_saved_notebook_reopened_without_a_kernel_reads_right(lab, context, saved, state):
    from playwright.sync_api import expect

    nb, store = saved
    name = write(lab, f"no-kernel-{state}.ipynb", nb, state=state, kernel=False)
    page = context.new_page()
    page.goto(lab.notebook_url(name))
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Select Kernel")
    page.keyboard.press("Escape")  # dismissed: the notebook stays without a kernel
    expect(dialog).to_have_count(0)
    cell = panel_cell(page)
    check_reads_right(cell, store)
    if state:  # drawn from the saved state: read-only, and it says so
        panel = cell.locator(PANEL)
        if panel.count():
            expect(panel.locator(".mw-read-only")).to_contain_text("Saved view")
            assert all(b.is_disabled() for b in panel.locator("button").all())
    save_artifact(page, f"reopened-no-kernel-{'state' if state else 'no-state'}.png")


def test_the_nbconvert_page_shows_the_totals_and_every_problem(context, saved, tmp_path):
    from nbconvert import HTMLExporter
    from playwright.sync_api import expect

    nb, store = saved
    page_html, _ = HTMLExporter().from_notebook_node(copy.deepcopy(nb))
    assert store not in page_html
    path = tmp_path / "saved.html"
    path.write_text(page_html)
    page = context.new_page()
    page.goto(path.as_uri())
    snapshot = page.locator(SNAPSHOT).first
    expect(snapshot).to_be_visible()
    expect(snapshot).to_contain_text("4/4 [")
    expect(snapshot).to_contain_text("3 succeeded, 1 failed")
    expect(snapshot).to_contain_text("the saved failure")
    body = page.locator("body")
    for text in WIDGET_ERRORS:
        expect(body).not_to_contain_text(text)
    cells = snapshot.locator("td").all()
    assert all(c.evaluate("e => e.scrollHeight <= e.clientHeight + 24") for c in cells)
    save_artifact(page, "nbconvert.png")


MARIMO_NOTEBOOK = """\
import marimo

app = marimo.App()


@app.cell
def _():
    from mission_widgets import MissionOrchestrator

    orch = MissionOrchestrator(max_concurrent=2, model="demo:fast", backend="thread",
                               store={store!r})
    panel = orch.panel(refresh_interval=0.25)
    panel
    return


if __name__ == "__main__":
    app.run()
"""


@pytest.fixture
def marimo_app(tmp_path):
    """``marimo run`` on a notebook whose one cell shows the panel (thread backend)."""
    notebook = tmp_path / "panel_app.py"
    notebook.write_text(MARIMO_NOTEBOOK.format(store=str(tmp_path / "store")))
    port = free_port()
    log = open(tmp_path / "marimo.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marimo",
            "run",
            str(notebook),
            "--headless",
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-token",
        ],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError((tmp_path / "marimo.log").read_text())
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    try:
        wait_for(ready, 60, "marimo to serve the notebook")
        yield f"http://{HOST}:{port}/"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def test_in_marimo_the_panel_renders_and_its_buttons_work(context, marimo_app):
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(marimo_app)
    panel = page.locator(PANEL)  # Playwright's CSS pierces marimo's shadow DOM
    expect(panel).to_be_visible(timeout=60_000)
    expect(panel.locator(".mw-meter")).to_have_text("no missions yet")
    save_artifact(page, "marimo-empty.png")
    goal = panel.locator("input.mw-goal")
    expect(goal).to_be_enabled()
    goal.fill("Plan a marimo picnic")
    panel.locator("button.mw-submit").click()
    mission = panel.locator(ROW).filter(has_text="Plan a marimo picnic")
    expect(mission).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(panel.locator(".mw-message")).to_have_text("started \u201cPlan a marimo picnic\u201d")
    expect(panel.locator(".mw-meter")).to_have_text(re.compile(r"^1/1 \["))
    mission.locator("button.mw-details-toggle").click()
    expect(mission.locator(".mw-details")).to_contain_text("Log (tail)")
    save_artifact(page, "marimo-after-submit.png")
    panel.locator("button.mw-tab-timeline").click()
    picture = panel.locator(".mw-timeline-view")
    expect(picture.locator("svg rect.attempt.succeeded").first).to_be_visible()
    expect(picture).to_contain_text("Timeline of 1 mission")
    save_artifact(page, "marimo-timeline.png")
