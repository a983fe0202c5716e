"""mission_widgets: run goal-driven, multi-step missions from a notebook without blocking it.

The engine (:mod:`mission_widgets.core`) is imported eagerly and is light; the orchestrator
(pandas) and the panel (ipywidgets) load on first use, so ``python -m mission_widgets.worker``
starts fast.
"""

from __future__ import annotations

from .core import (
    Budget,
    BudgetExceeded,
    CheckpointError,
    DemoModel,
    Mission,
    MissionError,
    MissionHooks,
    MissionStatus,
    MissionStep,
    MissionValidationError,
    ModelResolutionError,
    PlanError,
    Resolve,
    SharedSession,
    StallPolicy,
    StepStatus,
    StepTimeoutError,
    emit_event,
    register_price,
    register_provider,
    report_progress,
)

# typing costs worker start-up (workers import this package); annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .core.providers.openai_provider import OpenAIModel
    from .orchestrator import MissionOrchestrator
    from .widgets import MissionPanel

__version__ = "0.1.0"

_LAZY = {
    "MissionOrchestrator": ("mission_widgets.orchestrator", "MissionOrchestrator"),
    "MissionPanel": ("mission_widgets.widgets", "MissionPanel"),
    "OpenAIModel": ("mission_widgets.core.providers.openai_provider", "OpenAIModel"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mission_widgets' has no attribute {name!r}")


__all__ = [
    "Budget",
    "BudgetExceeded",
    "CheckpointError",
    "DemoModel",
    "Mission",
    "MissionError",
    "MissionHooks",
    "MissionOrchestrator",
    "MissionPanel",
    "MissionStatus",
    "MissionStep",
    "MissionValidationError",
    "ModelResolutionError",
    "OpenAIModel",
    "PlanError",
    "Resolve",
    "SharedSession",
    "StallPolicy",
    "StepStatus",
    "StepTimeoutError",
    "__version__",
    "emit_event",
    "register_price",
    "register_provider",
    "report_progress",
]
