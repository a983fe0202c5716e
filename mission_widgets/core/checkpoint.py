"""Saving and restoring missions: the JSON state of a mission and how values travel in it.

:func:`mission_state` is what ``Mission.save`` writes and the store keeps as a mission's final
state; :func:`apply_state` puts such a state back into a Mission (``resume``, ``load``, the
orchestrator's mirrors). Results and executors that JSON cannot hold travel as cloudpickle
blobs; :class:`Checkpointer` keeps a running mission's checkpoint file up to date.
"""

from __future__ import annotations

import base64
import os
import warnings
from collections.abc import Mapping

from .errors import CheckpointError, MissionValidationError, describe_error
from .ids import validate_mission_id
from .jsonio import read_json_file, write_json_atomic
from .planning import validate_dag
from .status import MISSION_STATUSES, STEP_STATUSES, MissionStatus, StepStatus
from .step import MissionStep

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .mission import Mission

MISSION_FORMAT = "mission_widgets.mission"


def encode_value(value: Any) -> Any:
    """JSON as is when possible, else a cloudpickle blob (for results and executors)."""
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {"__pickle__": pickle_b64(value), "repr": repr(value)[:200]}


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "__pickle__" in value:
        return unpickle_b64(value["__pickle__"])
    return value


def pickle_b64(value: Any) -> str:
    """Pickle for save files with cloudpickle, so notebook functions travel by value.

    A worker whose executors are all importable never loaded cloudpickle (its payload was
    plain references): there the stdlib pickler gives the same bytes without the import.
    """
    import pickle
    import sys

    from_main = "__main__" in (getattr(value, "__module__", None), type(value).__module__)
    if "cloudpickle" not in sys.modules and not from_main:
        try:
            return base64.b64encode(pickle.dumps(value)).decode("ascii")
        except Exception:
            pass  # a lambda or closure: cloudpickle below
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(value)).decode("ascii")


def unpickle_b64(text: str) -> Any:
    import pickle

    return pickle.loads(base64.b64decode(text))


def encode_executor(executor: Any, where: str) -> str | None:
    if executor is None:
        return None
    try:
        return pickle_b64(executor)
    except Exception as exc:
        warnings.warn(
            f"{where}: executor {executor!r} cannot be pickled ({describe_error(exc)}); "
            "it is not saved -- pass an executor when you resume",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def decode_executor(blob: str, where: str) -> Any:
    try:
        return unpickle_b64(blob)
    except Exception as exc:
        raise CheckpointError(
            f"{where}: the stored executor cannot be loaded ({describe_error(exc)}); "
            "pass an executor to the resuming Mission"
        ) from None


def encode_model(model: Any, *, include_objects: bool = True) -> Any:
    """A model for JSON: a spec string as it is; an object pickled like an executor, or a
    placeholder ``{"unsaved_model": repr, "note": ...}`` when it cannot be (or must not be)."""
    from .models import model_spec

    spec = model_spec(model)
    if model is None or spec is not None:
        return spec
    note = "pass model= when you resume"
    if include_objects:
        try:
            return {"__pickle__": pickle_b64(model), "repr": repr(model)[:200]}
        except Exception as exc:
            note = f"it cannot be pickled ({describe_error(exc)}); {note}"
            warnings.warn(
                f"the mission's model {model!r} is not saved: {note}", RuntimeWarning, stacklevel=3
            )
    return {"unsaved_model": repr(model)[:200], "note": note}


def decode_model(value: Any, source: str) -> Any:
    """The inverse of :func:`encode_model` (None for a placeholder)."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, dict) and "__pickle__" in value:
        try:
            return unpickle_b64(value["__pickle__"])
        except Exception as exc:
            raise CheckpointError(
                f"{source}: the stored model cannot be loaded ({describe_error(exc)}); "
                "pass model= to the resuming Mission"
            ) from None
    if isinstance(value, dict) and "unsaved_model" in value:
        return None
    raise CheckpointError(f'{source}: invalid "model" {value!r}')


def step_state(step: MissionStep, *, include_executor: bool = True) -> dict[str, Any]:
    """The JSON-ready state of one step (its spec plus what happened to it)."""
    entry = step.spec()
    entry.update(
        status=str(step.status),
        skipped=step.skipped,
        retry_count=step.retry_count,
        result=encode_value(step.result),
        error_history=list(step.error_history),
        started_at=step.started_at,
        finished_at=step.finished_at,
    )
    if include_executor:
        entry["executor"] = encode_executor(step.executor, f"step {step.id!r}")
    return entry


def mission_state(mission: Mission, *, include_executors: bool = True) -> dict[str, Any]:
    """The JSON-ready state of a mission (what ``Mission.save`` writes)."""
    steps = mission.steps
    data: dict[str, Any] = {
        "format": MISSION_FORMAT,
        "version": 1,
        "id": mission.id,
        "goal": mission.goal,
        "status": str(mission.status),
        "error": mission.error,
        "auto_plan": mission.auto_plan,
        "model": encode_model(mission.model, include_objects=include_executors),
        "stall_policy": mission.stall_policy.to_dict(),
        "created_at": mission.created_at,
        "started_at": mission.started_at,
        "finished_at": mission.finished_at,
        "session_memory": mission.session.json_memory(),
        "steps": None
        if steps is None
        else [step_state(s, include_executor=include_executors) for s in steps],
        "audit_log": list(mission.audit_log),
    }
    if include_executors:
        data["default_executor"] = encode_executor(mission.default_executor, "mission")
    return data


def _checked_id(value: Any, source: str) -> str:
    try:
        return validate_mission_id(value)
    except MissionValidationError as exc:
        raise CheckpointError(f'{source}: invalid "id" {value!r}: {exc}') from None


def apply_state(
    mission: Mission, data: Mapping[str, Any], source: str = "state", *, final: bool = False
) -> None:
    """Put saved state (see :func:`mission_state`) into ``mission``.

    ``final=True`` applies the end state of a mission that ran elsewhere: the status is kept
    as it is and the audit log (already mirrored from events) is left alone.
    """
    own_steps = {s.id: s for s in mission.steps or []}
    mission.id = _checked_id(data["id"], source)
    mission.goal = data["goal"]
    mission.auto_plan = bool(data.get("auto_plan", True))
    if mission.model is None:
        mission.model = decode_model(data.get("model"), source)
    # Stored step executors are restored unless this mission was given a default one
    # (decided before the stored default fills the gap, which must not hide them).
    use_stored = mission.default_executor is None
    if use_stored and data.get("default_executor"):
        mission.default_executor = decode_executor(data["default_executor"], source)
    mission.created_at = data.get("created_at") or mission.created_at
    mission.started_at = data.get("started_at")
    mission.finished_at = data.get("finished_at")
    mission.error = data.get("error")
    memory = data.get("session_memory") or {}
    if memory:
        mission.session.update_memory(memory)
    if data.get("steps") is not None:
        steps = []
        for entry in data["steps"]:
            own = own_steps.get(entry["id"])
            executor = own.executor if own is not None else None
            if executor is None and use_stored and entry.get("executor"):
                executor = decode_executor(entry["executor"], f"{source}, step {entry['id']!r}")
            step = MissionStep.from_spec(entry, executor)
            step_status = entry.get("status", "pending")
            if step_status not in STEP_STATUSES:
                raise CheckpointError(
                    f"{source}: step {entry['id']!r} has unknown status {step_status!r}"
                )
            step.status = StepStatus(step_status)
            step.skipped = bool(entry.get("skipped", False))
            step.retry_count = int(entry.get("retry_count", 0))
            step.result = decode_value(entry.get("result"))
            step.error_history = list(entry.get("error_history") or [])
            step.started_at = entry.get("started_at")
            step.finished_at = entry.get("finished_at")
            step.progress = 1.0 if step.status == StepStatus.DONE else 0.0
            steps.append(step)
        validate_dag((s.id, s.depends_on) for s in steps)
        mission.steps = steps
    status = data.get("status", "pending")
    if status not in MISSION_STATUSES:
        raise CheckpointError(f"{source}: unknown mission status {status!r}")
    # The saved status is restored as it was (aisdk); run() goes on from there.
    mission.status = MissionStatus(status)
    if not final:
        mission.audit_log = list(data.get("audit_log") or [])


def read_mission_file(path: str | os.PathLike) -> dict[str, Any]:
    """A mission save file as a dict; CheckpointError names the file when it is not one."""
    return read_json_file(path, "mission", MISSION_FORMAT)


def load_into(mission: Mission, path: str | os.PathLike) -> Mission:
    """``Mission.resume``: apply the save file at ``path`` to ``mission``."""
    data = read_mission_file(path)
    try:
        apply_state(mission, data, source=f"mission file {os.fspath(path)}")
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"mission file {path} is invalid: {exc}") from None
    return mission


def save_mission(mission: Mission, path: str | os.PathLike) -> str:
    """``Mission.save``: write the mission as human-readable JSON (atomically)."""
    write_json_atomic(path, mission_state(mission))
    return os.fspath(path)


class Checkpointer:
    """Keeps a running mission's checkpoint file current; a write that fails only warns.

    The events are the record of a mission: a checkpoint is a convenience copy for resuming,
    so a checkpoint that cannot be written never fails the mission.
    """

    def __init__(self, mission: Mission, path: str) -> None:
        self.mission = mission
        self.path = path

    def save(self) -> None:
        try:
            # Not fsynced: a checkpoint is a convenience copy; the store is the record.
            write_json_atomic(self.path, mission_state(self.mission), durable=False)
        except Exception as exc:
            warnings.warn(
                f"could not checkpoint mission {self.mission.id} to {self.path}: "
                f"{describe_error(exc)}",
                RuntimeWarning,
                stacklevel=2,
            )
