"""The pure-Python mission engine: steps, missions, policies, hooks, sessions, events, models.

Nothing here imports ipywidgets, pandas or the runtime, so worker processes stay light.
"""

from .budget import Budget, BudgetExceeded
from .cost import register_price
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
from .hooks import EVENT_HOOKS, HOOK_SIGNATURES, MissionHooks
from .ids import validate_mission_id
from .listeners import dispatch
from .mission import Mission
from .models import DemoModel, LazyModel, register_provider, resolve_model
from .planning import parse_plan
from .policy import Resolve, StallPolicy
from .replay import apply_event
from .session import SharedSession
from .status import (
    MISSION_STATUSES,
    STEP_STATUSES,
    TERMINAL_STATUSES,
    MissionStatus,
    StepStatus,
)
from .step import MissionStep

__all__ = [
    "EVENT_FIELDS",
    "EVENT_HOOKS",
    "HOOK_SIGNATURES",
    "MISSION_STATUSES",
    "STEP_STATUSES",
    "TERMINAL_STATUSES",
    "Budget",
    "BudgetExceeded",
    "CheckpointError",
    "DemoModel",
    "LazyModel",
    "Mission",
    "MissionCancelled",
    "MissionError",
    "MissionHooks",
    "MissionStatus",
    "MissionStep",
    "MissionValidationError",
    "ModelResolutionError",
    "PlanError",
    "Resolve",
    "SharedSession",
    "StallPolicy",
    "StepStatus",
    "StepTimeoutError",
    "apply_event",
    "classify_error",
    "dispatch",
    "emit_event",
    "make_event",
    "parse_plan",
    "register_price",
    "register_provider",
    "report_progress",
    "resolve_model",
    "validate_mission_id",
]
