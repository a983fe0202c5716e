"""The pure-Python mission engine: steps, missions, policies, hooks, sessions, events, models.

Nothing here imports ipywidgets, pandas or the runtime, so worker processes stay light.
"""

from .errors import (
    CheckpointError,
    MissionCancelled,
    MissionError,
    MissionValidationError,
    ModelResolutionError,
    PlanError,
    StepTimeoutError,
    classify_error,
)
from .events import EVENT_FIELDS, emit_event, make_event, report_progress
from .hooks import HOOK_SIGNATURES, MissionHooks
from .mission import MISSION_STATUSES, TERMINAL_STATUSES, Mission
from .models import DemoModel, LazyModel, register_provider, resolve_model
from .planning import parse_plan
from .policy import StallPolicy
from .replay import apply_event
from .session import SharedSession
from .step import STEP_STATUSES, MissionStep

__all__ = [
    "EVENT_FIELDS",
    "HOOK_SIGNATURES",
    "MISSION_STATUSES",
    "STEP_STATUSES",
    "TERMINAL_STATUSES",
    "CheckpointError",
    "DemoModel",
    "LazyModel",
    "Mission",
    "MissionCancelled",
    "MissionError",
    "MissionHooks",
    "MissionStep",
    "MissionValidationError",
    "ModelResolutionError",
    "PlanError",
    "SharedSession",
    "StallPolicy",
    "StepTimeoutError",
    "apply_event",
    "classify_error",
    "emit_event",
    "make_event",
    "parse_plan",
    "register_provider",
    "report_progress",
    "resolve_model",
]
