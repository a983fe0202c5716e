"""MissionHooks: optional callbacks on a mission's life; a hook that raises only warns."""

from __future__ import annotations

import warnings
from collections.abc import Callable

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


class MissionHooks:
    """Callbacks fired as a mission runs. Each is optional.

    ``trigger_<event>(...)`` calls the hook if set; an exception in a hook becomes a
    ``RuntimeWarning`` naming the hook and never fails the mission. Hooks run where the
    mission runs (a worker process for the subprocess backend).
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
    def coerce(cls, value: MissionHooks | dict[str, Callable] | None) -> MissionHooks:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(HOOK_SIGNATURES))
            if unknown:
                raise TypeError(f"unknown hook(s) {', '.join(map(repr, unknown))}")
            return cls(**value)
        raise TypeError(f"hooks must be MissionHooks or a dict, got {type(value).__name__}")

    def trigger(self, name: str, *args: Any) -> None:
        """Call hook ``name`` with ``args``; turn any exception into a RuntimeWarning."""
        fn = getattr(self, name, None)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:
            warnings.warn(
                f"mission hook {name} raised {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=3,
            )

    def __repr__(self) -> str:
        set_hooks = [name for name in HOOK_SIGNATURES if getattr(self, name) is not None]
        return f"MissionHooks({', '.join(set_hooks)})"


def _make_trigger(name: str) -> Callable[..., None]:
    def trigger(self: MissionHooks, *args: Any) -> None:
        self.trigger(name, *args)

    trigger.__name__ = "trigger_" + name.removeprefix("on_")
    trigger.__doc__ = f"Fire {name}({', '.join(HOOK_SIGNATURES[name])})."
    return trigger


for _name in HOOK_SIGNATURES:
    setattr(MissionHooks, "trigger_" + _name.removeprefix("on_"), _make_trigger(_name))
del _name
