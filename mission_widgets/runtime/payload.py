"""What travels to a worker: the mission (cloudpickle) plus the custom model providers.

Checked in the kernel at submit time, so an unpicklable executor is named there and not
discovered deep inside a worker.
"""

from __future__ import annotations

import os
import pickle

from ..core.checkpoint import share_large_goal
from ..core.cost import registered_prices
from ..core.errors import MissionError
from ..core.mission import Mission
from ..core.models import model_spec, provider_factory, split_spec

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BUILTIN_PROVIDERS = frozenset({"demo", "openai"})
PAYLOAD_VERSION = 1


class MissionNotPicklableError(MissionError, TypeError):
    """Part of a mission cannot travel to a worker process (names the part)."""


def build_payload(mission: Mission, checkpoint_path: str | None = None) -> dict[str, Any]:
    """The mission plus the custom provider its model string needs (a worker has only the
    built-in ones); other registered providers stay home. With the mission's
    ``checkpoint_path``, a goal over 1 MiB is written beside it once and the payload
    carries a reference (issue 15.4: stored once)."""
    if checkpoint_path is not None:
        share_large_goal(mission, checkpoint_path)
    providers = {}
    spec = model_spec(mission.model_for_run())
    if spec is not None:
        name, _ = split_spec(spec)
        factory = provider_factory(name)
        if name not in BUILTIN_PROVIDERS and factory is not None:
            providers[name] = factory
    return {
        "version": PAYLOAD_VERSION,
        "mission": mission,
        "providers": providers,
        "prices": registered_prices(),
    }


def _parts(mission: Mission) -> list[tuple[str, Any]]:
    parts: list[tuple[str, Any]] = [("the mission's default executor", mission.default_executor)]
    for step in mission.steps or []:
        parts.append((f"the executor of step {step.id!r}", step.executor))
    for name in vars(mission.hooks):
        parts.append((f"hook {name}", getattr(mission.hooks, name)))
    parts.append(("stall_policy.escalate_fn", mission.stall_policy.escalate_fn))
    parts.append(("the model", mission.model))
    for key, value in mission.session.memory().items():
        parts.append((f"session memory {key!r}", value))
    return parts


def dumps_payload(payload: dict[str, Any]) -> bytes:
    """cloudpickle the payload; on failure name the part of the mission that cannot go."""
    import cloudpickle

    try:
        return cloudpickle.dumps(payload)
    except Exception as exc:
        mission: Mission = payload["mission"]
        for where, value in _parts(mission):
            if value is None:
                continue
            try:
                cloudpickle.dumps(value)
            except Exception as part_exc:
                raise MissionNotPicklableError(
                    f"mission {mission.id}: {where} ({value!r}) cannot be pickled for a worker "
                    f"process: {type(part_exc).__name__}: {part_exc}. Make it picklable or use "
                    "backend='thread'"
                ) from None
        raise MissionNotPicklableError(
            f"mission {mission.id} cannot be pickled for a worker process: "
            f"{type(exc).__name__}: {exc}"
        ) from None


def write_payload(path: str | os.PathLike, data: bytes) -> None:
    from .store_location import open_private

    path = os.fspath(path)
    tmp = path + ".tmp"
    fd = open_private(tmp)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """Load a payload; a clear error names the file when it is missing or corrupt."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise MissionError(f"mission file {path} is missing") from None
    except OSError as exc:
        raise MissionError(
            f"mission file {path} cannot be read (a symbolic link?): {exc}"
        ) from None
    try:
        payload = pickle.loads(data)
    except ImportError as exc:
        # The file is fine: what it refers to cannot be imported here (a module beside the
        # notebook that this process does not see).
        import sys

        raise MissionError(
            f"mission file {path}: could not import module {exc.name or '?'!r} ({exc}); "
            f"the worker's sys.path is {sys.path} and its cwd is {os.getcwd()}: make the "
            "module importable there (install it, or keep it in the notebook's folder)"
        ) from None
    except Exception as exc:
        raise MissionError(
            f"mission file {path} is corrupt or truncated: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("mission"), Mission):
        raise MissionError(f"mission file {path} does not hold a mission")
    mission = payload["mission"]
    try:  # what a start reads first: a pickle older releases made whole, or not (see below)
        repr(mission), mission.step_summary(), mission.progress, mission.model_for_run()
    except Exception as exc:
        raise MissionError(
            f"mission file {path} holds a mission this release cannot run: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return payload


def refusal(problem: str, made_by: str | None) -> str:
    """The error of a queued mission whose file cannot be run here (``problem``): with the
    release that made it (``made_by``, its row's; None in a format-0 store) when that is
    another release, so its owner knows to submit it again. The row and file are kept."""
    from .store_format import BEFORE_FORMATS, made_by_label

    if made_by == made_by_label():
        return problem
    return (
        f"refused: made by version {made_by or BEFORE_FORMATS}; resubmit it ({problem}; "
        "its row and mission file are kept)"
    )
