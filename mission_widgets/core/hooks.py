"""MissionHooks: optional callbacks on a mission's life, fired from its event stream.

Hooks are one more sink of the event stream: :data:`EVENT_HOOKS` is the one table that says
which hook(s) an event fires and with which arguments, and :class:`HookSink` (attached to
every mission, like its audit log) applies it. So no event is emitted without its hook and
no hook fires without its event. A hook that raises becomes a RuntimeWarning, never a
mission failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .listeners import dispatch

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .events import Event

#: Hook name -> its parameters (the order they are called with).
HOOK_SIGNATURES: dict[str, tuple[str, ...]] = {
    "on_mission_start": ("mission",),
    "on_planner_start": ("mission",),
    "on_planner_done": ("mission", "steps"),
    "on_mission_planned": ("mission",),
    "on_step_start": ("step", "attempt"),
    "on_retry_start": ("step", "attempt", "error"),
    "on_retry_success": ("step", "result", "attempt"),
    "on_step_success": ("step", "result", "attempt"),
    "on_step_done": ("step", "result"),
    "on_step_failure": ("step", "error", "attempt"),
    "on_step_failed": ("step", "error", "attempt"),
    "on_mission_stall": ("mission", "step"),
    "on_mission_end": ("mission",),
    "on_mission_done": ("mission",),
}

HookArgs = Callable[["Any", "Event"], tuple]  # (mission, event) -> the hook's arguments


def _mission(m: Any, e: Event) -> tuple:
    return (m,)


def _step_attempt(m: Any, e: Event) -> tuple:
    return (m.get_step(e["step_id"]), e["attempt"])


def _step_error_attempt(m: Any, e: Event) -> tuple:
    step = m.get_step(e["step_id"])
    return (step, step.last_exception, e["attempt"])


def _step_attempt_error(m: Any, e: Event) -> tuple:
    step = m.get_step(e["step_id"])
    return (step, e["attempt"], step.last_exception)


def _step_result_attempt(m: Any, e: Event) -> tuple:
    step = m.get_step(e["step_id"])
    return (step, step.result, e["attempt"])


def _step_result(m: Any, e: Event) -> tuple:
    step = m.get_step(e["step_id"])
    return (step, step.result)


#: Event name -> ((hook name, argument builder), ...): the one place events meet hooks.
#: A failed planner (``planner_done`` with an error) fires no on_planner_done.
EVENT_HOOKS: dict[str, tuple[tuple[str, HookArgs], ...]] = {
    "mission_start": (("on_mission_start", _mission),),
    "planner_start": (("on_planner_start", _mission),),
    "planner_done": (("on_planner_done", lambda m, e: (m, m.steps)),),
    "mission_planned": (("on_mission_planned", _mission),),
    "step_start": (("on_step_start", _step_attempt),),
    "retry_start": (("on_retry_start", _step_attempt_error),),
    "step_failure": (("on_step_failure", _step_error_attempt),),
    "step_failed": (("on_step_failed", _step_error_attempt),),
    "step_success": (("on_step_success", _step_result_attempt),),
    "retry_success": (("on_retry_success", _step_result_attempt),),
    "step_done": (("on_step_done", _step_result),),
    "mission_stall": (("on_mission_stall", lambda m, e: (m, m.get_step(e["step_id"]))),),
    "mission_done": (("on_mission_end", _mission), ("on_mission_done", _mission)),
}


class MissionHooks:
    """Callbacks fired as a mission runs. Each is optional.

    A mission fires them from its events (see :data:`EVENT_HOOKS`); ``trigger_<name>(...)``
    fires one by hand. An exception in a hook becomes a ``RuntimeWarning`` naming the hook and
    never fails the mission. Hooks run where the mission runs (a worker process for the
    subprocess backend). Attempts count from 1.
    """

    def __init__(
        self,
        on_mission_start: Callable | None = None,
        on_planner_start: Callable | None = None,
        on_planner_done: Callable | None = None,
        on_mission_planned: Callable | None = None,
        on_step_start: Callable | None = None,
        on_retry_start: Callable | None = None,
        on_retry_success: Callable | None = None,
        on_step_success: Callable | None = None,
        on_step_done: Callable | None = None,
        on_step_failure: Callable | None = None,
        on_step_failed: Callable | None = None,
        on_mission_stall: Callable | None = None,
        on_mission_end: Callable | None = None,
        on_mission_done: Callable | None = None,
    ) -> None:
        given = locals()
        for name in HOOK_SIGNATURES:
            fn = given[name]
            if fn is not None and not callable(fn):
                raise TypeError(f"hook {name} must be callable, got {type(fn).__name__}")
            setattr(self, name, fn)

    @classmethod
    def coerce(cls, value: MissionHooks | Mapping[str, Callable] | None) -> MissionHooks:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(HOOK_SIGNATURES))
            if unknown:
                raise TypeError(f"unknown hook(s) {', '.join(map(repr, unknown))}")
            return cls(**value)
        raise TypeError(f"hooks must be MissionHooks or a dict, got {type(value).__name__}")

    def trigger(self, name: str, *args: Any) -> None:
        """Call hook ``name`` with ``args``; turn any exception into a RuntimeWarning."""
        fn = getattr(self, name, None)
        if fn is not None:
            dispatch({name: fn}, *args, what="mission hook")

    # Explicit, typed triggers (one per hook), so callers and mypy see them.
    def trigger_mission_start(self, mission: Any) -> None:
        self.trigger("on_mission_start", mission)

    def trigger_planner_start(self, mission: Any) -> None:
        self.trigger("on_planner_start", mission)

    def trigger_planner_done(self, mission: Any, steps: Any) -> None:
        self.trigger("on_planner_done", mission, steps)

    def trigger_mission_planned(self, mission: Any) -> None:
        self.trigger("on_mission_planned", mission)

    def trigger_step_start(self, step: Any, attempt: int) -> None:
        self.trigger("on_step_start", step, attempt)

    def trigger_retry_start(self, step: Any, attempt: int, error: Any) -> None:
        self.trigger("on_retry_start", step, attempt, error)

    def trigger_retry_success(self, step: Any, result: Any, attempt: int) -> None:
        self.trigger("on_retry_success", step, result, attempt)

    def trigger_step_success(self, step: Any, result: Any, attempt: int) -> None:
        self.trigger("on_step_success", step, result, attempt)

    def trigger_step_done(self, step: Any, result: Any) -> None:
        self.trigger("on_step_done", step, result)

    def trigger_step_failure(self, step: Any, error: Any, attempt: int) -> None:
        self.trigger("on_step_failure", step, error, attempt)

    def trigger_step_failed(self, step: Any, error: Any, attempt: int) -> None:
        self.trigger("on_step_failed", step, error, attempt)

    def trigger_mission_stall(self, mission: Any, step: Any) -> None:
        self.trigger("on_mission_stall", mission, step)

    def trigger_mission_end(self, mission: Any) -> None:
        self.trigger("on_mission_end", mission)

    def trigger_mission_done(self, mission: Any) -> None:
        self.trigger("on_mission_done", mission)

    def __repr__(self) -> str:
        set_hooks = [name for name in HOOK_SIGNATURES if getattr(self, name) is not None]
        return f"MissionHooks({', '.join(set_hooks)})"


class HookSink:
    """The event sink that fires a mission's hooks (see :data:`EVENT_HOOKS`)."""

    def __init__(self, mission: Any) -> None:
        self.mission = mission

    def __call__(self, event: Event) -> None:
        name = event["event"]
        if name == "planner_done" and event.get("error_type"):
            return  # the planner failed: there are no steps to report
        hooks = self.mission.hooks
        for hook_name, build_args in EVENT_HOOKS.get(name, ()):
            fn = getattr(hooks, hook_name, None)
            if fn is not None:
                dispatch({hook_name: fn}, *build_args(self.mission, event), what="mission hook")
