"""The panel's view-model (core.panel_view): a truthful tqdm-like header, which rows are
pinned, each row as the browser gets it, and a palette readable in light and dark themes."""

from __future__ import annotations

import pytest

from mission_widgets.core import panel_view as pv
from mission_widgets.core import progress as pg

NOW = 1_000_000.0


def view(status: str, **fields) -> pg.MissionView:
    return pg.mission_view({"id": "mission_1_abc", "goal": "g", "status": status, **fields}, NOW)


def test_the_meter_reads_like_tqdm():
    assert pv.format_meter(12, 40, 5.0, 12) == "12/40 [00:05<00:12, 2.4 missions/s]"
    assert pv.format_meter(0, 40, 4.0, 0) == "0/40 [00:04<?, ? missions/s]"
    assert pv.format_meter(3, 10, 30.0, 3) == "3/10 [00:30<01:10, 10s/mission]"
    assert pv.format_meter(40, 40, 16.0, 40, finished=True) == "40/40 [00:16 total, 2.5 missions/s]"
    assert pv.format_meter(0, 4, None, 0) == "0/4 [not started]"
    assert pv.format_meter(4, 4, None, 0) == "4/4 [all ended]"
    assert pv.format_meter(0, 0, None, 0) == "no missions yet"
    assert [pv.format_clock(s) for s in (0, 4.4, 4.6, 754, 3723, None)] == [
        "00:00",
        "00:04",
        "00:05",
        "12:34",
        "1:02:03",
        "?",
    ]


def test_the_remaining_time_grows_while_nothing_ends():
    """The clock ticks (in the browser, with this formula): with nothing ending, the rate
    falls and the remaining time grows instead of standing still."""
    before = pv.format_meter(4, 8, 4.0, 4)
    later = pv.format_meter(4, 8, 40.0, 4)
    assert before == "4/8 [00:04<00:04, 1.0 missions/s]"
    assert later == "4/8 [00:40<00:40, 10s/mission]"


def test_blocked_work_is_said_instead_of_an_eta():
    assert pv.blocked_text(2, 0, 0, 0, 3) == "blocked: 2 wait for you"
    assert pv.blocked_text(1, 1, 0, 5, 2) == "blocked: 1 waits for you, 1 hung"
    assert pv.blocked_text(1, 0, 1, 0, 3) is None  # something still moves
    assert pv.blocked_text(1, 0, 0, 4, 3) is None  # free slots: queued work will start
    assert pv.blocked_text(0, 0, 0, 4, 3) is None
    text = pv.format_meter(3, 40, 12.0, 3, blocked="blocked: 2 wait for you")
    assert text == "3/40 [00:12, blocked: 2 wait for you]"


def test_the_stacked_bar_counts_every_status_in_order_with_pending_last():
    counts = {"pending": 36, "running": 2, "planning": 1, "succeeded": 36, "failed": 3}
    assert pv.bar_segments(counts) == (
        ("succeeded", 36),
        ("failed", 3),
        ("running", 3),
        ("pending", 36),
    )
    header = pv.header_view({"succeeded": 36, "failed": 4}, pv.Wave(NOW - 16, 0, NOW), NOW)
    assert header.segments == (("succeeded", 36), ("failed", 4))  # not one red bar
    assert header.text == "40/40 [00:16 total, 2.5 missions/s]"
    assert header.blocked is None


def test_a_wave_starts_with_work_and_closes_when_nothing_is_left():
    assert pv.advance_wave(None, 0, 5, None, NOW) is None  # queued only: no clock
    wave = pv.advance_wave(None, 2, 5, NOW - 3, NOW)
    assert wave == pv.Wave(NOW - 3, 2)
    assert pv.advance_wave(wave, 4, 5, NOW - 1, NOW + 1) is wave
    closed = pv.advance_wave(wave, 5, 5, None, NOW + 9, last_end=NOW + 5)
    assert closed == pv.Wave(NOW - 3, 2, NOW + 5)
    header = pv.header_view({"succeeded": 5}, closed, NOW + 20)
    assert (header.done, header.text) == (3, "5/5 [00:08 total, 2.7s/mission]")
    again = pv.advance_wave(closed, 5, 6, NOW + 30, NOW + 31)
    assert again == pv.Wave(NOW + 30, 5)  # new work: a new clock, counting from 5


def test_rows_needing_attention_and_what_their_second_line_says():
    failed = view("failed", error="aborted at step 'x': ValueError: row 1", finished_at=NOW)
    waiting = view("waiting", waiting_on="shaky")
    hung = view("running", stall_reason="no_heartbeat", last_heartbeat=NOW - 12)
    talking = view("running", message="page 7 of 20", started_at=NOW - 3, progress=0.35)
    done = view("succeeded", finished_at=NOW, result_summary="42\nmore")
    assert [pv.needs_attention(v) for v in (failed, waiting, hung, talking, done)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert pv.row_note(failed) == ("error", "ValueError: row 1 (aborted at step 'x')")
    assert pv.row_note(waiting) == ("waiting", "waiting for you at step shaky")
    assert pv.row_note(hung) == ("stall", "no heartbeat")
    assert pv.row_note(talking) == ("message", "page 7 of 20")
    assert pv.row_note(done) == ("result", "result: 42")
    row = pv.row_state(hung, cancellable=True)
    assert row["health"] == "no_heartbeat" and row["heartbeat_at"] == NOW - 12
    assert row["attention"] and row["cancellable"]
    moving = pv.row_state(talking, cancellable=True)
    assert moving["started_at"] == NOW - 3 and moving["elapsed"] is None  # ticks in JS
    assert moving["health"] is None and moving["progress"] == 0.35
    assert pv.row_state(waiting, False)["status"] == "waiting"
    legacy = view("stalled", waiting_on="s2")  # a store that words waiting as stalled
    assert pv.display_status(legacy) == "waiting"


def test_row_text_is_bounded():
    row = pv.row_state(view("running", goal="g" * 5000, message="m" * 5000), False)
    assert len(row["goal"]) == pv.GOAL_CHARS and len(row["note"]) == pv.NOTE_CHARS


def _luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("status", sorted(pg.STATUS_STYLES))
def test_every_status_colour_reads_at_4_5_to_1_in_light_and_dark_themes(status):
    style = pg.STATUS_STYLES[status]
    # JupyterLab's light and dark --jp-layout-color0 and the grey of a light output area.
    assert contrast(style.colour, "#ffffff") >= 4.5
    assert contrast(style.colour, "#f5f5f5") >= 4.5
    assert contrast(style.dark, "#111111") >= 4.5
    assert contrast(style.dark, "#212121") >= 4.5
