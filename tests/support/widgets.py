"""Helpers for panel tests."""

from support.waiting import wait_for as wait_until

__all__ = ["wait_until"]
