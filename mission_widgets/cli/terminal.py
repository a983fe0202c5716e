"""What the command line writes to a terminal, and how it keeps that output safe.

:class:`Console` knows what the output stream can do (live redraw, colour, Unicode, width);
:class:`LiveFrame` redraws a block of lines in place; :func:`escape_control` and
:func:`safe_view` make text that came from missions (goals, errors, stall reasons, log lines)
harmless to print: a goal that holds ANSI or OSC sequences must not recolour, retitle or
rewrite the user's terminal. The tables themselves are drawn by the pure functions of
:mod:`mission_widgets.core.progress`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from typing import Any, TextIO

from ..core import progress as pg

#: C0 controls but \t and \n, DEL, C1 controls, and the bidirectional overrides and isolates
#: (they reorder what a reader sees: "Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: object) -> str:
    """``text`` with every control character shown as a visible escape (ESC -> ``\\x1b``,
    CR -> ``\\x0d``, U+202E -> ``\\u202e``); newlines and tabs are kept. Pure: what the
    command line applies to everything a mission wrote before it reaches a terminal."""
    return _CONTROL.sub(_escape_one, str(text))


def safe_view(view: pg.MissionView) -> pg.MissionView:
    """``view`` with its mission-supplied texts escaped (:func:`escape_control`)."""
    return view._replace(
        mission_id=escape_control(view.mission_id),
        goal=escape_control(view.goal),
        stall_reason=None if view.stall_reason is None else escape_control(view.stall_reason),
        last_error=None if view.last_error is None else escape_control(view.last_error),
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class Console:
    """What the output stream can do: live redraw, colour, Unicode, width."""

    def __init__(self, stream: TextIO, *, live: bool = True) -> None:
        self.stream = stream
        tty = _isatty(stream) and os.environ.get("TERM", "") != "dumb"
        self.live = live and tty
        self.color = tty and not os.environ.get("NO_COLOR")
        self.ascii = not (tty and _can_encode(stream, "\u2588\u258f\u2713\u2717\u2514\u2026"))

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows): $COLUMNS/$LINES, else the terminal's, else 120x24."""
        cols, rows = shutil.get_terminal_size((120, 24))
        return max(cols, 20), max(rows, 5)

    @property
    def width(self) -> int:
        # One column spare: writing into the last column makes some terminals wrap.
        return self.size[0] - 1

    def styler(self) -> pg.Styler | None:
        return pg.ansi if self.color else None

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.color else text

    def print(self, text: str = "") -> None:
        """Write one line. ``text`` is the command's own; anything in it that came from a
        mission must already be escaped (:func:`escape_control`, :func:`safe_view`)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def table(self, views: Sequence[pg.MissionView], **options: Any) -> list[str]:
        """The status table of ``views``, escaped, fitted to the width, coloured if we may."""
        return pg.format_table(
            [safe_view(v) for v in views],
            width=self.width,
            ascii=self.ascii,
            styler=self.styler(),
            **options,
        )

    def line(self, view: pg.MissionView, clock: float | None) -> str:
        """One log line about ``view`` (plain output), escaped."""
        return pg.format_line(safe_view(view), clock, ascii=self.ascii)


class LiveFrame:
    """A block of lines redrawn in place with ANSI escapes (TTY only)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.height = 0
        self.console.stream.write("\x1b[?25l")  # hide the cursor while drawing

    def draw(self, lines: Sequence[str]) -> None:
        out = []
        if self.height:
            out.append(f"\r\x1b[{self.height}A")
        for line in lines:
            out.append("\x1b[2K" + line + "\n")
        out.append("\x1b[J")  # erase what the previous, taller frame left below
        self.console.stream.write("".join(out))
        self.console.stream.flush()
        self.height = len(lines)

    def close(self, *, erase: bool) -> None:
        if erase and self.height:
            self.console.stream.write(f"\r\x1b[{self.height}A\x1b[J")
            self.height = 0
        self.console.stream.write("\x1b[?25h")
        self.console.stream.flush()


_PRIORITY = {"waiting": 0, "stalled": 0, "failed": 1, "running": 2, "planning": 2, "cancelled": 3}


def fit_views(
    views: Sequence[pg.MissionView], max_rows: int
) -> tuple[list[pg.MissionView], list[pg.MissionView]]:
    """Split ``views`` into those shown (at most ``max_rows``, in order; waiting, stalled,
    failed and running first) and those summarised, so a live frame never outgrows the
    screen."""
    if len(views) <= max_rows:
        return list(views), []
    max_rows = max(max_rows - 1, 0)  # one line for "... and N more"
    ranked = sorted(range(len(views)), key=lambda i: (_PRIORITY.get(views[i].status, 4), i))
    keep = set(ranked[:max_rows])
    shown = [v for i, v in enumerate(views) if i in keep]
    hidden = [v for i, v in enumerate(views) if i not in keep]
    return shown, hidden
