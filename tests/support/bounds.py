"""Executors that produce too much text: huge error messages, custom events, printing."""

from __future__ import annotations

import sys

from mission_widgets.core.events import emit_event


class Shouts:
    """Emits ``events`` custom events and prints ``printed`` bytes, then returns."""

    def __init__(self, events: int, printed: int):
        self.events, self.printed = events, printed

    def __call__(self, task, session, context):
        for i in range(self.events):
            emit_event("my_note", index=i)
        line = "x" * 1023 + "\n"
        for _ in range(self.printed // 1024):
            sys.stdout.write(line)
        sys.stdout.write("THE END OF THE LOG\n")
        sys.stdout.flush()
        return "shouted"


class FailsHuge:
    """Raises a RuntimeError whose message is ``size`` characters (made when it fails, so
    the mission's own files stay small)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, task, session, context):
        raise RuntimeError("E" * self.size)
