"""The timeline as a person sees it: Chromium opens a saved timeline.html and its screenshot
shows the bars, in the colours of how each attempt ended, where the events put them."""

from __future__ import annotations

import pytest
from support.lab import chromium_missing_reason, launch_chromium
from support.png import png_pixels

from mission_widgets.core.events import make_event
from mission_widgets.core.progress import status_style
from mission_widgets.core.timeline import mission_traces
from mission_widgets.core.timeline_draw import Timeline

MISSING = chromium_missing_reason()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


GREEN, RED = _rgb(status_style("succeeded").colour), _rgb(status_style("failed").colour)
T0 = 1_700_000_000.0


def events():
    def ev(name, at, **fields):
        return make_event(name, "m1", timestamp=T0 + at, **fields)

    return [
        ev("mission_start", 0, goal="a retry in the picture"),
        ev("mission_planned", 0, steps=[{"id": "a"}]),
        ev("step_start", 0, step_id="a", attempt=1),
        ev("step_failure", 4, step_id="a", attempt=1, error_message="boom"),
        ev("retry_start", 4, step_id="a", attempt=2),
        ev("step_start", 6, step_id="a", attempt=2),
        ev("step_success", 10, step_id="a", attempt=2),
        ev("mission_done", 10, status="succeeded"),
    ]


def columns_of(pixels, width, colour, top, bottom):
    """The x of every pixel of ``colour`` between rows ``top`` and ``bottom``."""
    rows = range(int(top), int(bottom) + 1)
    return sorted({x for y in rows for x in range(width) if pixels[y * width + x] == colour})


def test_a_screenshot_shows_a_red_then_a_green_bar_where_the_events_put_them(tmp_path):
    from playwright.sync_api import sync_playwright

    page_file = Timeline(mission_traces(events()), width=800).save(tmp_path / "timeline.html")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 400})
            page.goto(f"file://{page_file}")
            page.locator("rect.attempt").first.wait_for()
            box = page.locator("svg.steps").bounding_box()
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    (tmp_path / "timeline.png").write_bytes(shot)
    width, _, pixels = png_pixels(shot)
    assert box is not None and box["height"] > 0
    top, bottom = box["y"], box["y"] + box["height"]  # the steps' rows, not the legend
    red = columns_of(pixels, width, RED, top, bottom)
    green = columns_of(pixels, width, GREEN, top, bottom)
    assert red and green, "the failed and the succeeded attempt are both visible"
    assert max(red) < min(green), "the failed attempt comes first"
    # 4 s of red, a 2 s gap, 4 s of green over 10 s: the bars' widths follow the events
    plot = 800 - 220 - 12
    assert len(red) == pytest.approx(plot * 0.4, abs=3)
    assert len(green) == pytest.approx(plot * 0.4, abs=3)
    assert min(green) - max(red) == pytest.approx(plot * 0.2, abs=3)
