"""Helpers for panel tests (a uniquely named module: test folders share one sys.path)."""

from mission_widgets.testing.waiting import wait_for as wait_until

__all__ = ["wait_until"]
