"""Shared fixtures of the core engine tests."""

from __future__ import annotations

import threading
import time

import pytest

from mission_widgets.core.hooks import HOOK_SIGNATURES, MissionHooks


@pytest.fixture
def release():
    """An Event that hanging executors wait on; set at teardown, then their threads must end.

    Timed-out attempts keep their helper thread until the blocking call returns; setting the
    event lets every such thread finish, so no thread outlives the test.
    """
    before = set(threading.enumerate())
    event = threading.Event()
    yield event
    event.set()
    deadline = time.monotonic() + 5.0
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"thread {thread.name} outlived the test"


class HookRecorder:
    """MissionHooks with every hook set, recording (hook name, args) in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self._lock = threading.Lock()

        def make(name: str):
            def hook(*args):
                with self._lock:
                    self.calls.append((name, args))

            return hook

        self.hooks = MissionHooks(**{name: make(name) for name in HOOK_SIGNATURES})

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def hook_recorder() -> HookRecorder:
    return HookRecorder()
