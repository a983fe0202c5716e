"""Fixtures of the browser tests: a JupyterLab server per module, one Chromium per module,
and a screenshot of each test's page kept when the test fails. Skipped, with the reason,
where Debian's Chromium is missing (``.ci/run`` installs it)."""

from __future__ import annotations

import shutil

import pytest
from support.browser import ARTIFACTS
from support.lab import JupyterLab, chromium_missing_reason, launch_chromium

from mission_widgets import MissionOrchestrator

MISSING = chromium_missing_reason()


def pytest_collection_modifyitems(items):
    for item in items:
        if MISSING is not None and "tests/browser/" in str(item.fspath).replace("\\\\", "/"):
            item.add_marker(pytest.mark.skip(reason=MISSING))


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


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshot(request, tmp_path):
    """``screenshot(page)``: after the test the page is saved as ``tmp_path/<test>.png``;
    if the test failed, also copied to ``$MW_ARTIFACTS/browser/`` for CI."""
    pages = []
    failures_before = request.session.testsfailed
    yield pages.append
    failed = request.session.testsfailed > failures_before
    for page in pages:
        if page.is_closed():
            continue
        path = tmp_path / f"{request.node.name}.png"
        page.screenshot(path=path, full_page=True)
        if failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, ARTIFACTS / path.name)
