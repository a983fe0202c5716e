"""The pure progress view-model and text rendering (no terminal, no store, no kernel)."""

from __future__ import annotations

import math
import sys

import pytest

from mission_widgets.core import progress as pg
from mission_widgets.core.mission import Mission
from mission_widgets.core.progress import (
    MissionView,
    estimate_eta,
    format_bar,
    format_duration,
    format_table,
    mission_view,
)
from mission_widgets.core.step import MissionStep

NOW = 1_800_000_000.0


def make_view(**fields) -> MissionView:
    base = dict(
        mission_id="mission_20260101000000_ab12cd34",
        goal="Plan a three-day trip to Lisbon",
        status="running",
        progress=0.5,
        n_done=2,
        n_steps=4,
        elapsed=10.0,
        eta=10.0,
        bar_style="info",
    )
    base.update(fields)
    return MissionView(**base)


def make_mission(status="running", steps=(), started=NOW - 10, finished=None, **attrs):
    mission = Mission("Explain photosynthesis", mission_id="mission_20260101000000_deadbeef")
    mission.steps = list(steps) or None
    mission.status = status
    mission.started_at = started
    mission.finished_at = finished
    for key, value in attrs.items():
        setattr(mission, key, value)
    return mission


def step(step_id, status="pending", progress=0.0, errors=()):
    s = MissionStep(step_id, f"do {step_id}")
    s.status = status
    s.progress = progress
    s.error_history = [
        {"attempt": i + 1, "error": e, "timestamp": NOW - 5 + i} for i, e in enumerate(errors)
    ]
    return s


# -- format_bar ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 5, 10, 16, 33])
@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.125, 0.3333, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("ascii", [True, False])
def test_bar_is_always_exactly_width(width, fraction, ascii):
    assert len(format_bar(fraction, width, ascii=ascii)) == width


def test_bar_ascii_fill():
    assert format_bar(0.0, 10, ascii=True) == ".........."
    assert format_bar(0.5, 10, ascii=True) == "#####....."
    assert format_bar(1.0, 10, ascii=True) == "##########"
    assert format_bar(0.999, 10, ascii=True) == "#########."


def test_bar_unicode_uses_eighths():
    assert format_bar(1.0, 4) == "\u2588" * 4
    assert format_bar(0.0, 4) == " " * 4
    assert format_bar(0.5, 4) == "\u2588\u2588  "
    # 1/8 of 4 cells = half a cell -> the 4/8 block
    assert format_bar(1 / 8, 4) == "\u258c   "


@pytest.mark.parametrize("junk", [-0.5, 1.7, float("nan"), None, "abc", float("inf")])
def test_bar_clamps_junk(junk):
    bar = format_bar(junk, 8, ascii=True)
    assert len(bar) == 8
    assert set(bar) <= {"#", "."}
    if junk == 1.7:
        assert bar == "#" * 8
    elif junk != float("inf"):
        assert bar == "." * 8


def test_bar_zero_width():
    assert format_bar(0.5, 0) == ""
    assert format_bar(0.5, -3) == ""


def test_percent():
    assert pg.format_percent(0) == "  0%"
    assert pg.format_percent(0.429) == " 42%"
    assert pg.format_percent(0.9999) == " 99%"  # 100% only when complete
    assert pg.format_percent(1.0) == "100%"


# -- format_duration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, text",
    [
        (None, "-"),
        (float("nan"), "-"),
        (-3, "0.0s"),
        (0, "0.0s"),
        (0.44, "0.4s"),
        (9.94, "9.9s"),
        (9.96, "10s"),
        (59.4, "59s"),
        (59.6, "1m00s"),
        (65, "1m05s"),
        (3599.4, "59m59s"),
        (3600, "1h00m"),
        (7260, "2h01m"),
        (86400 + 4 * 3600, "1d04h"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


# -- estimate_eta -----------------------------------------------------------------------------


def test_eta_at_average_rate():
    assert estimate_eta(0.25, 10.0) == pytest.approx(30.0)
    assert estimate_eta(0.5, 4.0) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "progress, elapsed", [(0.0, 5.0), (1.0, 5.0), (1.2, 5.0), (0.5, None), (None, 3.0)]
)
def test_eta_none_when_not_estimable(progress, elapsed):
    assert estimate_eta(progress, elapsed) is None


def test_eta_nan_is_none():
    assert estimate_eta(float("nan"), 3.0) is None
    assert estimate_eta(0.5, float("nan")) is None


# -- mission_view from a Mission ---------------------------------------------------------------


@pytest.mark.parametrize(
    "status, style",
    [
        ("pending", ""),
        ("planning", "info"),
        ("running", "info"),
        ("succeeded", "success"),
        ("failed", "danger"),
        ("cancelled", ""),
        ("stalled", "warning"),
    ],
)
def test_bar_style_by_status(status, style):
    assert mission_view(make_mission(status=status), NOW).bar_style == style
    assert pg.bar_style(status) == style


def test_view_of_a_running_mission():
    mission = make_mission(
        steps=[step("a", "done", 1.0), step("b", "running", 0.5), step("c"), step("d")]
    )
    view = mission_view(mission, NOW)
    assert view.mission_id == mission.id
    assert view.goal == "Explain photosynthesis"
    assert view.status == "running"
    assert (view.n_done, view.n_steps, view.n_failed) == (1, 4, 0)
    assert view.progress == pytest.approx(1.5 / 4)
    assert view.elapsed == pytest.approx(10.0)
    assert view.eta == pytest.approx(10.0 * (1 - 0.375) / 0.375)
    assert not view.finished
    assert view.short_id == "deadbeef"


def test_view_of_a_pending_mission_has_no_times():
    view = mission_view(make_mission(status="pending", started=None), NOW)
    assert view.elapsed is None
    assert view.eta is None
    assert view.progress == 0.0
    assert (view.n_done, view.n_steps) == (0, 0)


def test_eta_none_at_zero_progress_and_when_finished():
    assert mission_view(make_mission(steps=[step("a", "running", 0.0)]), NOW).eta is None
    done = make_mission(
        status="succeeded", steps=[step("a", "done", 1.0)], finished=NOW - 2, started=NOW - 9
    )
    view = mission_view(done, NOW)
    assert view.eta is None
    assert view.finished
    assert view.progress == 1.0
    assert view.elapsed == pytest.approx(7.0)  # frozen at the end, not growing with now


def test_unfinished_mission_never_shows_complete():
    mission = make_mission(steps=[step("a", "done", 1.0), step("b", "retrying", 1.0)])
    view = mission_view(mission, NOW)
    assert view.progress < 1.0
    assert pg.format_percent(view.progress) != "100%"


def test_failed_view_carries_the_error_and_counts():
    mission = make_mission(
        status="failed",
        steps=[step("a", "failed", errors=["boom 1", "boom 2"]), step("b")],
        finished=NOW,
        error="aborted at step 'a': RuntimeError: boom 2",
    )
    view = mission_view(mission, NOW)
    assert view.bar_style == "danger"
    assert view.last_error == "aborted at step 'a': RuntimeError: boom 2"
    assert view.n_failed == 1
    assert view.finished


def test_last_error_falls_back_to_the_latest_step_error():
    mission = make_mission(
        steps=[step("a", "done", 1.0, errors=["first"]), step("b", "retrying", 0.2, ["later"])]
    )
    assert mission_view(mission, NOW).last_error == "step 'b': later"


def test_stalled_view_is_finished_with_a_warning_and_no_health_flag():
    mission = make_mission(status="stalled", stall_reason="no_progress", finished=NOW)
    view = mission_view(mission, NOW)
    assert view.bar_style == "warning"
    assert view.finished and view.stall_badge is None  # health is for missions still going
    assert view.eta is None


def test_a_running_mission_with_a_health_flag_keeps_running_with_its_badge():
    view = mission_view(make_mission(status="running", stall_reason="no_heartbeat"), NOW)
    assert (view.status, view.stall_badge, view.finished) == ("running", "no_heartbeat", False)
    assert pg.table_note(view) == "no_heartbeat"


def test_view_is_hashable_and_comparable():
    a = mission_view(make_mission(), NOW)
    b = mission_view(make_mission(), NOW)
    assert a == b and hash(a) == hash(b)
    assert a != mission_view(make_mission(), NOW + 1)  # elapsed moved on


# -- mission_view from store rows and status() records ------------------------------------------


def test_view_of_a_store_row():
    row = {
        "id": "mission_20260101000000_cafe0001",
        "goal": "Draft a quiz",
        "status": "failed",
        "n_steps": 5,
        "n_done": 1,
        "n_failed": 1,
        "progress": 0.4,
        "started_at": NOW - 20,
        "finished_at": NOW - 5,
        "error": "aborted",
        "stall_reason": None,
    }
    view = mission_view(row, NOW)
    assert (view.status, view.n_steps, view.n_done, view.n_failed) == ("failed", 5, 1, 1)
    assert view.progress == pytest.approx(0.2)  # 1 of 5 steps finished, as the steps say
    assert view.elapsed == pytest.approx(15.0)
    assert view.last_error == "aborted"
    assert view.bar_style == "danger"
    assert view.short_id == "cafe0001"


def test_view_of_a_status_record_with_pandas_values():
    pd = pytest.importorskip("pandas")
    record = {
        "id": "m1",
        "goal": "g",
        "status": "running",
        "n_steps": 4,
        "n_done": 2,
        "progress": 0.5,
        "started_at": pd.Timestamp(NOW - 8, unit="s", tz="UTC"),
        "finished_at": pd.NaT,
        "error": float("nan"),
        "stall_reason": None,
    }
    view = mission_view(record, NOW)
    assert view.elapsed == pytest.approx(8.0)
    assert view.eta == pytest.approx(8.0)
    assert view.last_error is None
    assert view.mission_id == "m1"


def test_view_of_a_pending_row_with_missing_fields():
    view = mission_view({"id": "m", "goal": "g", "status": "pending"}, NOW)
    assert view == MissionView("m", "g", "pending", 0.0, 0, 0, None, None, "", finished=False)


# -- tables and lines ----------------------------------------------------------------------------


VIEWS = [
    make_view(),
    make_view(
        mission_id="mission_x_00ff00ff",
        goal="Draft a quiz on fractions [fail]",
        status="failed",
        progress=0.4,
        n_done=0,
        n_steps=5,
        eta=None,
        bar_style="danger",
        last_error="aborted at step 'gather': RuntimeError: simulated failure",
        finished=True,
    ),
    make_view(
        mission_id="mission_x_11111111",
        goal="Wait forever [hang]",
        status="stalled",
        progress=0.0,
        n_done=0,
        eta=None,
        bar_style="warning",
        stall_reason="no progress for 4 s",
    ),
    make_view(
        mission_id="mission_x_22222222",
        status="pending",
        progress=0.0,
        n_steps=0,
        n_done=0,
        elapsed=None,
        eta=None,
        bar_style="",
    ),
]


@pytest.mark.parametrize("width", [60, 80, 100, 120, 160, 200])
def test_table_fits_the_width(width):
    lines = format_table(VIEWS, width=width)
    assert all(len(line) <= width for line in lines), [len(x) for x in lines]
    text = "\n".join(lines)
    for view in VIEWS:
        assert view.short_id in text
        assert view.status in text


def test_table_shows_failure_and_stall_reasons():
    wide = "\n".join(format_table(VIEWS, width=200))
    assert "RuntimeError: simulated failure" in wide
    assert "no progress for 4 s" in wide
    narrow = format_table(VIEWS, width=90)  # the reason moves onto its own line
    assert any(line.strip().startswith("\u2514 aborted") for line in narrow)
    assert "no progress for 4 s" in "\n".join(narrow)


def test_table_marks_failures_and_stalls():
    lines = format_table(VIEWS, width=120, ascii=True, notes=False)
    marks = {line.split()[1]: line[0] for line in lines[1:]}
    assert marks["ab12cd34"] == ">"
    assert marks["00ff00ff"] == "x"
    assert marks["11111111"] == "!"
    assert all(ord(ch) < 128 for line in lines for ch in line)


def test_table_rows_show_bar_steps_and_times():
    line = format_table([VIEWS[0]], width=120, ascii=True, header=False)[0]
    assert "########........  50%" in line
    assert " 2/4 " in line
    assert "10s" in line
    assert "Plan a three-day trip to Lisbon" in line


def test_healthy_missions_have_no_note_even_after_retried_errors():
    view = make_view(status="succeeded", last_error="step 'a': transient", finished=True)
    assert pg.table_note(view) == ""
    assert len(format_table([view], width=200)) == 2


def test_table_note_names_stall_and_error():
    view = make_view(status="cancelled", last_error="cancelled by user", stall_reason="no_progress")
    assert pg.table_note(view) == "cancelled by user"  # ended: its health is history
    waiting = make_view(status="waiting", waiting_on="s2")
    assert pg.table_note(waiting) == "waiting for a decision at step s2"


def test_styler_is_applied_after_layout():
    calls = []

    def styler(text, style):
        calls.append(style)
        return f"<{style}>{text}</>"

    plain = format_table(VIEWS, width=120)
    styled = format_table(VIEWS, width=120, styler=styler)
    assert {"running", "failed", "stalled"} <= set(calls)
    for a, b in zip(plain, styled):
        stripped = b
        for style in [*pg.STATUS_STYLES, ""]:
            stripped = stripped.replace(f"<{style}>", "")
        assert stripped.replace("</>", "") == a


def test_empty_table_is_just_the_header():
    assert len(format_table([], width=100)) == 1


def test_format_line_for_logs():
    line = pg.format_line(VIEWS[1], 4.2)
    assert line.startswith("[  4.2s] 00ff00ff failed")
    assert "[######..........]" in line
    assert "0/5" in line
    assert "-- aborted at step 'gather'" in line
    assert "\n" not in pg.format_line(make_view(goal="two\nlines"), None)


def test_change_key_ignores_clock_and_fraction():
    a = make_view()
    assert pg.change_key(a) == pg.change_key(a._replace(elapsed=99.0, progress=0.6))
    assert pg.change_key(a) != pg.change_key(a._replace(n_done=3))
    assert pg.change_key(a) != pg.change_key(a._replace(status="stalled"))


def test_counts_in_lifecycle_order():
    counts = pg.status_counts(VIEWS)
    assert list(counts) == ["pending", "running", "failed", "stalled"]
    assert pg.format_counts(counts) == "1 pending, 1 running, 1 failed, 1 stalled"
    assert pg.format_counts({}) == "no missions"


def test_truncate_and_short_id():
    assert pg.truncate("abcdef", 4) == "abc\u2026"
    assert pg.truncate("abcdef", 4, ascii=True) == "a..."
    assert pg.truncate("ab", 4) == "ab"
    assert pg.truncate("a\nb", 10) == "a b"
    assert pg.short_id("mission_20260101000000_ab12cd34") == "ab12cd34"
    assert pg.short_id("custom-id") == "custom-id"


def test_module_is_pure():
    """core.progress imports no ipywidgets, pandas or runtime code (checked in a fresh
    interpreter, since this test process may have imported them already)."""
    import subprocess

    code = (
        "import sys, mission_widgets.core.progress;"
        "bad = [m for m in ('ipywidgets', 'pandas', 'IPython', 'mission_widgets.runtime',"
        " 'mission_widgets.orchestrator') if m in sys.modules];"
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_math_sanity_of_eta_over_a_run():
    # a steady mission: the ETA plus the elapsed time stays the total
    for p in (0.1, 0.3, 0.7, 0.95):
        assert math.isclose(estimate_eta(p, 20 * p) + 20 * p, 20.0)
