"""The panel's pure view-model (core.progress): overall bar, rate and ETA, one palette,
what a row says inline. No widgets, no store."""

from __future__ import annotations

import pytest

from mission_widgets.core import progress as pg
from mission_widgets.core.mission import MISSION_STATUSES

NOW = 1_000_000.0


def row(status, **fields):
    return {"id": "mission_1_abc", "goal": "g", "status": status, **fields}


def test_overall_is_ended_over_total_in_the_style_of_the_worst_state():
    counts = {"pending": 2, "running": 3, "succeeded": 4, "failed": 1}
    view = pg.overall_view(counts, NOW)
    assert (view.total, view.ended) == (10, 5)
    assert view.fraction == 0.5
    assert view.status == "failed"
    assert view.style.bar_style == "danger"
    assert pg.overall_view({"running": 1, "succeeded": 3}, NOW).status == "running"
    assert pg.overall_view({"succeeded": 3}, NOW).style.bar_style == "success"
    assert pg.overall_view({"stalled": 1, "cancelled": 2}, NOW).status == "stalled"
    # Flagged stalled or waiting for a person: counted as stalled, not as ended.
    assert pg.overall_view({"stalled": 2, "succeeded": 1}, NOW, in_flight=1).ended == 2
    empty = pg.overall_view({}, NOW)
    assert (empty.total, empty.fraction, empty.status) == (0, 0.0, None)


def test_rate_and_eta_count_from_when_tracking_began():
    counts = {"running": 6, "succeeded": 4}
    view = pg.overall_view(counts, NOW, since=(NOW - 10, 2))
    assert view.rate == pytest.approx(0.2)  # 2 ended in 10 s
    assert view.eta == pytest.approx(30.0)  # 6 left at 0.2/s
    assert pg.format_overall(view) == "4/10 ended \u00b7 5.0s/mission \u00b7 ETA 30s"
    assert pg.overall_view(counts, NOW, since=(NOW - 10, 4)).rate is None  # none ended since
    assert pg.overall_view(counts, NOW).eta is None
    done = pg.overall_view({"succeeded": 10}, NOW, since=(NOW - 2, 0))
    assert done.eta is None
    assert pg.format_rate(5.0) == "5.0 missions/s"
    assert pg.format_rate(None) == ""


def test_one_palette_tells_failed_cancelled_and_stalled_apart_by_colour_and_symbol():
    bad = [pg.status_style(s) for s in ("failed", "cancelled", "stalled")]
    assert len({style.colour for style in bad}) == 3
    assert len({style.glyph for style in bad}) == 3
    assert len({style.mark for style in bad}) == 3
    assert len({style.ansi for style in bad}) == 3
    assert set(pg.STATUS_STYLES) == set(MISSION_STATUSES)  # every status has its style
    assert pg.ansi("x", "failed") == "\x1b[31mx\x1b[0m"
    assert pg.ansi("  ", "failed") == "  "


def test_a_failed_row_keeps_its_progress_and_shows_its_first_error_line():
    view = pg.mission_view(
        row("failed", progress=0.4, error="ValueError: bad input\n  more detail", finished_at=NOW),
        NOW,
    )
    assert view.progress == 0.4
    assert view.bar_style == "danger"
    assert view.error_line == "ValueError: bad input"
    at_step = pg.mission_view(
        row("failed", error="aborted at step 'fetch': TimeoutError: too slow", finished_at=NOW),
        NOW,
    )
    assert at_step.error_line == "TimeoutError: too slow (aborted at step 'fetch')"
    assert view.finished


def test_a_mission_that_gave_up_shows_the_percent_of_its_steps_that_finished():
    # The demo's [fail] mission: two parallel steps ran their attempts to the end and failed.
    failed = pg.mission_view(row("failed", progress=0.4, n_steps=5, n_done=0, finished_at=NOW), NOW)
    assert (failed.progress, pg.format_steps(failed)) == (0.0, "0/5")
    stalled = pg.mission_view(
        row("stalled", progress=0.7, n_steps=4, n_done=2, finished_at=NOW), NOW
    )
    assert stalled.progress == 0.5
    # A cancelled one keeps its bar where it stopped; a running one its reported progress.
    cancelled = pg.mission_view(
        row("cancelled", progress=0.4, n_steps=5, n_done=1, finished_at=NOW), NOW
    )
    assert cancelled.progress == 0.4
    assert pg.mission_view(row("running", progress=0.4, n_steps=5, n_done=0), NOW).progress == 0.4


def test_a_succeeded_mission_has_no_error_even_after_recovered_retries():
    view = pg.mission_view(row("succeeded", error="retry 1 failed", finished_at=NOW), NOW)
    assert view.last_error is None
    assert view.error_line is None


def test_a_flagged_stall_is_not_finished_and_its_badge_goes_when_it_recovers_or_ends():
    flagged = pg.mission_view(row("stalled", stall_reason="no progress for 9 s"), NOW)
    assert not flagged.finished  # its worker still runs: it can be cancelled
    assert flagged.stall_badge == "no progress for 9 s"
    ended = pg.mission_view(row("stalled", stall_reason="x", finished_at=NOW), NOW)
    assert ended.finished
    recovered = pg.mission_view(row("running", stall_reason="no progress for 9 s"), NOW)
    assert recovered.stall_badge is None
    cancelled = pg.mission_view(row("cancelled", stall_reason="x", finished_at=NOW), NOW)
    assert cancelled.stall_badge is None


def test_waiting_on_and_paging():
    assert pg.mission_view(row("stalled", waiting_on="s2"), NOW).waiting_on == "s2"
    assert pg.mission_view(row("running"), NOW).waiting_on is None
    assert [pg.page_count(n, 25) for n in (0, 1, 25, 26, 1000)] == [1, 1, 1, 2, 40]
    assert pg.first_line("\n\n  a\nb") == "a"
    assert pg.first_line("  ") is None
