"""The kernel side: the layer between ``runtime`` (where missions execute) and ``widgets``.

``MissionOrchestrator`` queues missions, keeps the sliding concurrency window and answers
``status()``; the pieces it holds live beside it, each owning its own state:

- ``mission_orchestrator`` -- the orchestrator itself (queue, window, submit, run, wait);
- ``mirror`` -- in-kernel ``Mission`` mirrors kept current from the store's event stream;
- ``watcher`` -- the one background thread per orchestrator while anything is in flight;
- ``control`` -- cancel, decide, explain, reconcile, forget: actions on missions;
- ``cancellation`` / ``deciding`` -- the same actions on a store row, from any process;
- ``finished`` -- read-only views of finished missions; ``handles`` -- ``AsyncHandle`` futures;
- ``status_table`` -- the cached ``status()`` DataFrame.

Imports flow one way: ``core`` -> ``runtime`` -> ``orchestrator`` -> ``widgets`` -> ``cli``.
"""

from __future__ import annotations

from .handles import AsyncHandle, MissionFailed, PollResult
from .mission_orchestrator import MissionOrchestrator

__all__ = ["AsyncHandle", "MissionFailed", "MissionOrchestrator", "PollResult"]
