"""The pure view-model of one mission (core.progress): one palette, what a row says
inline. No widgets, no store. The panel's header is tested in test_panel_view.py."""

from __future__ import annotations

from mission_widgets.core import progress as pg
from mission_widgets.core.mission import MISSION_STATUSES

NOW = 1_000_000.0


def row(status, **fields):
    return {"id": "mission_1_abc", "goal": "g", "status": status, **fields}


def test_one_palette_tells_failed_cancelled_and_stalled_apart_by_colour_and_symbol():
    bad = [pg.status_style(s) for s in ("failed", "cancelled", "stalled", "waiting")]
    assert len({style.colour for style in bad}) == 4
    assert len({style.dark for style in bad}) == 4
    assert len({style.glyph for style in bad}) == 4
    assert len({style.mark for style in bad[:3]}) == 3
    assert len({style.ansi for style in bad[:3]}) == 3
    assert set(pg.STATUS_STYLES) >= set(MISSION_STATUSES)  # every status has its style
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


def test_a_flagged_mission_runs_and_its_badge_goes_when_it_recovers_or_ends():
    flagged = pg.mission_view(row("running", stall_reason="no_progress"), NOW)
    assert not flagged.finished  # its worker still runs: it can be cancelled
    assert (flagged.status, flagged.stall_badge) == ("running", "no_progress")
    ended = pg.mission_view(row("stalled", stall_reason="x", finished_at=NOW), NOW)
    assert ended.finished and ended.stall_badge is None
    recovered = pg.mission_view(row("running", stall_reason=None), NOW)
    assert recovered.stall_badge is None
    waiting = pg.mission_view(row("waiting", waiting_on="s2"), NOW)
    assert not waiting.finished and waiting.stall_badge is None
    cancelled = pg.mission_view(row("cancelled", stall_reason="x", finished_at=NOW), NOW)
    assert cancelled.stall_badge is None


def test_waiting_on_and_paging():
    assert pg.mission_view(row("waiting", waiting_on="s2"), NOW).waiting_on == "s2"
    assert pg.mission_view(row("running"), NOW).waiting_on is None
    assert [pg.page_count(n, 25) for n in (0, 1, 25, 26, 1000)] == [1, 1, 1, 2, 40]
    assert pg.first_line("\n\n  a\nb") == "a"
    assert pg.first_line("  ") is None
