"""Make docs/panel.png: the live panel in JupyterLab, as a user sees it.

Run from the repository root (needs /usr/bin/chromium; about 30 s):

    .venv/bin/python docs/make_screenshot.py            # writes docs/panel.png
    .venv/bin/python docs/make_screenshot.py -o /tmp/panel.png

It reuses the browser tests' JupyterLab and Chromium helpers (``tests/support/lab.py``):
a JupyterLab on 127.0.0.1 in a temporary directory runs a notebook with six missions on
the offline ``"demo"`` model and small executors, then waits until the panel shows every
state at once — running (with step counts and time left), succeeded, failed (pinned on
top with its cause), hung (its health flag) and cancelled (by clicking its Cancel button) —
and saves a crop of the panel: the tqdm-like header over a bar stacked by status, the chips
that filter, problems first, one row per mission with its second line.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
REPO_DIR = DOCS_DIR.parent
sys.path.insert(0, str(REPO_DIR / "tests"))  # the tests' support package

from support.lab import (  # noqa: E402
    PANEL,
    PINNED,
    ROW,
    JupyterLab,
    chromium_missing_reason,
    launch_chromium,
    open_notebook,
    run_all_cells,
)

SETUP = """\
import time
from mission_widgets import Mission, MissionOrchestrator, MissionStep, report_progress

def work(seconds):
    def run(task, session, context):
        for tick in range(1, 21):
            time.sleep(seconds / 20)
            report_progress(tick / 20)
        return "done: " + task
    return run

def steps(*plan):
    return [
        MissionStep(f"step{{i}}", text, executor=work(secs),
                    depends_on=[f"step{{i - 1}}"] if i else None)
        for i, (text, secs) in enumerate(plan)
    ]

orch = MissionOrchestrator(max_concurrent=8, model="demo", store={store!r})
"""

SHOW = """\
panel = orch.panel(refresh_interval=0.5, no_progress_secs=3, reconcile_every_secs=1)
panel
"""

START = """\
orch.run_async(Mission("Summarise the 2024 climate report"))
orch.run_async(Mission("Compare three sorting algorithms", steps=steps(
    ("Collect implementations", 1), ("Write benchmarks", 1), ("Run benchmarks", 60),
    ("Plot results", 20), ("Write up", 20))))
orch.run_async(Mission("Draft a lesson plan on photosynthesis", steps=steps(
    ("Outline", 1), ("Find diagrams", 40), ("Write exercises", 30), ("Answer key", 20))))
orch.run_async(Mission("Translate the user guide into French [fail]",
                       stall_policy={"on_max_retries": "abort"}))
orch.run_async(Mission("Scrape the conference schedule [hang]"))
orch.run_async(Mission("Benchmark the new tokenizer", steps=steps(
    ("Prepare corpus", 1), ("Tokenize", 60), ("Report", 20))))
"""


def row(page, goal: str):
    return page.locator(ROW).filter(has_text=goal)


def make(output: Path, timeout_ms: float = 60_000) -> Path:
    from playwright.sync_api import expect, sync_playwright

    reason = chromium_missing_reason()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="panel_screenshot_") as tmp:
        lab = JupyterLab(Path(tmp)).start()
        store = lab.root / "store"
        try:
            lab.write_notebook("missions.ipynb", [SETUP.format(store=str(store)), SHOW, START])
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    context = browser.new_context(
                        viewport={"width": 1280, "height": 1000}, device_scale_factor=2
                    )
                    page = context.new_page()
                    page.set_default_timeout(timeout_ms)
                    expect.set_options(timeout=timeout_ms)
                    open_notebook(page, lab, "missions.ipynb")
                    page.keyboard.press("Control+b")  # hide the file browser: a wider panel
                    run_all_cells(page)
                    expect(page.locator(ROW)).to_have_count(6)

                    status = "data-status"
                    expect(row(page, "climate report")).to_have_attribute(status, "succeeded")
                    failed = page.locator(PINNED).locator(ROW).filter(has_text="French")
                    expect(failed).to_have_attribute(status, "failed")
                    expect(failed.locator(".mw-line2")).to_be_visible()
                    hung = page.locator(PINNED).locator(ROW).filter(has_text="conference")
                    expect(hung.locator(".mw-line2")).to_contain_text(re.compile("no.progress"))
                    tokenizer = row(page, "tokenizer")
                    expect(tokenizer.locator(".mw-steps")).to_have_text("1/3")
                    tokenizer.locator("button.mw-cancel").click()
                    expect(tokenizer).to_have_attribute(status, "cancelled")
                    for goal in ("sorting", "photosynthesis"):
                        expect(row(page, goal)).to_contain_text("left")
                        expect(row(page, goal)).to_have_attribute(status, "running")
                    page.mouse.move(0, 0)  # no hover highlight in the picture
                    output.parent.mkdir(parents=True, exist_ok=True)
                    page.locator(PANEL).screenshot(path=str(output))
                    context.close()
                finally:
                    browser.close()
        finally:
            if store.exists():
                from mission_widgets import MissionOrchestrator

                leftover = MissionOrchestrator(store=store)
                leftover.cancel_all()
                leftover.close()
            lab.stop()
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make the README screenshot of the panel.")
    parser.add_argument("-o", "--output", type=Path, default=DOCS_DIR / "panel.png")
    args = parser.parse_args(argv)
    print(make(args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
