"""Helpers for panel tests: what the browser would send, and what the panel sends it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from support.waiting import wait_for as wait_until

__all__ = ["browser_says", "sent_messages", "wait_until"]


def browser_says(panel: Any, **content: Any) -> None:
    """Deliver a custom message as the panel's ES module sends it (``model.send(...)``)."""
    panel._on_browser_message(panel, content, [])


@contextlib.contextmanager
def sent_messages(panel: Any) -> Iterator[list[str]]:
    """The state updates the panel sends its browser meanwhile, each as its JSON text."""
    sent: list[str] = []
    comm = panel.comm
    original = comm.send

    def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        if isinstance(data, dict) and data.get("method") == "update":
            sent.append(json.dumps(data))
        original(data=data, metadata=metadata, buffers=buffers)

    comm.send = send
    try:
        yield sent
    finally:
        comm.send = original
