"""Saving and restoring missions: the JSON state of a mission and how values travel in it.

:func:`mission_state` is what ``Mission.save`` writes and the store keeps as a mission's final
state; :func:`apply_state` puts such a state back into a Mission (``resume``, ``load``, the
orchestrator's mirrors). Results and executors that JSON cannot hold travel as cloudpickle
blobs; :class:`Checkpointer` keeps a running mission's checkpoint file up to date.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

from .errors import CheckpointError, CheckpointIdError, MissionValidationError, describe_error
from .ids import validate_mission_id
from .jsonio import read_json_file, write_json_atomic
from .pickling import decode_value, encode_value, pickle_b64, unpickle_b64
from .planning import validate_dag
from .status import MISSION_STATUSES, STEP_STATUSES, MissionStatus, StepStatus
from .step import MissionStep
from .values import LARGE_VALUE_BYTES, LargeValue, from_reference, store_large, summarize

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .contracts import MissionLike

if TYPE_CHECKING:
    from typing import TypeVar

    AnyMission = TypeVar("AnyMission", bound=MissionLike)

MISSION_FORMAT = "mission_widgets.mission"


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


def large_dir(path: str) -> str:
    """Where the large values of the checkpoint or save file ``path`` live: beside it, named
    after its stem (``checkpoints/<id>.json`` -> ``checkpoints/<id>.large/``, which the
    store's prune removes with the mission)."""
    return os.path.splitext(path)[0] + ".large"


def journal_path(path: str) -> str:
    """The per-step journal (JSON lines) beside the checkpoint ``path``."""
    return path + ".journal"


def _file_name(text: str) -> str:
    import re
    import zlib

    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', text)[:60]}-{zlib.crc32(text.encode()):08x}"


def _encode_big(value: Any, home: str | None, name: str) -> tuple[Any, LargeValue | None]:
    """``(JSON for value, None)``, or for a value over LARGE_VALUE_BYTES with a file ``home``
    (a save file's path) ``(its reference, the LargeValue written once beside it)``."""
    if isinstance(value, LargeValue):
        if home is None:
            return value.reference(None), None
        base = os.path.dirname(os.path.abspath(home))
        if os.path.abspath(value.path).startswith(os.path.abspath(large_dir(home)) + os.sep):
            return value.reference(base), None
        value = value.load()  # stored beside another file: store it beside this one too
    encoded = encode_value(value)
    if home is None or (isinstance(value, str) and len(value) <= LARGE_VALUE_BYTES // 4):
        return encoded, None
    import json

    text = json.dumps(encoded, ensure_ascii=False)
    if len(text) <= LARGE_VALUE_BYTES and len(text.encode("utf-8")) <= LARGE_VALUE_BYTES:
        return encoded, None
    stored = store_large(text, large_dir(home), _file_name(name), summarize(value))
    return stored.reference(os.path.dirname(os.path.abspath(home))), stored


def share_large_goal(mission: MissionLike, home: str) -> None:
    """Write a goal over LARGE_VALUE_BYTES beside the checkpoint ``home`` now, so a pickle of
    ``mission`` (a worker's payload) carries a reference to that one file, not a copy."""
    goal = mission.stored_goal()
    stored = None
    if isinstance(goal, str) and len(goal) > LARGE_VALUE_BYTES // 4:
        _, stored = _encode_big(goal, home, "goal")
    mission._goal_ref = stored  # None: the goal travels as it is


def step_state(
    step: MissionStep, *, include_executor: bool = True, home: str | None = None
) -> dict[str, Any]:
    """The JSON-ready state of one step (its spec plus what happened to it).

    With ``home`` (the path of the file being written) a result over LARGE_VALUE_BYTES goes
    to a file beside it, once: the step then holds the reference and loads it when asked.
    """
    result, stored = _encode_big(step.stored_result(), home, f"step-{step.id}-result")
    if stored is not None:
        step.result = stored
    entry = step.spec()
    entry.update(
        status=str(step.status),
        skipped=step.skipped,
        retry_count=step.retry_count,
        result=result,
        result_note=step.result_note,
        error_history=list(step.error_history),
        started_at=step.started_at,
        finished_at=step.finished_at,
    )
    if include_executor:
        entry["executor"] = encode_executor(step.executor, f"step {step.id!r}")
    return entry


def mission_state(
    mission: MissionLike, *, include_executors: bool = True, home: str | None = None
) -> dict[str, Any]:
    """The JSON-ready state of a mission (what ``Mission.save`` writes).

    ``home``: the file being written (default: the mission's checkpoint), beside which
    large values are stored and against which their references are relative.
    """
    home = home or mission.checkpoint_path
    steps = mission.steps
    goal, _ = _encode_big(mission.stored_goal(), home, "goal")
    data: dict[str, Any] = {
        "format": MISSION_FORMAT,
        "version": 1,
        "id": mission.id,
        "goal": goal,
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
        else [step_state(s, include_executor=include_executors, home=home) for s in steps],
        "audit_log": list(mission.audit_log),
    }
    if include_executors:
        data["default_executor"] = encode_executor(mission.default_executor, "mission")
    return data


def _checked_id(value: Any, source: str) -> str:
    try:
        return validate_mission_id(value)
    except MissionValidationError as exc:
        raise CheckpointIdError(f'{source}: invalid "id" {value!r}: {exc}') from None


def apply_state(
    mission: MissionLike,
    data: Mapping[str, Any],
    source: str = "state",
    *,
    final: bool = False,
    base_dir: str | None = None,
) -> None:
    """Put saved state (see :func:`mission_state`) into ``mission``.

    ``final=True`` applies the end state of a mission that ran elsewhere: the status is kept
    as it is and the audit log (already mirrored from events) is left alone. Large values
    stay in their files (read when asked), found relative to ``base_dir`` (default: the
    folder of the mission's ``checkpoint_path``).
    """
    if base_dir is None and mission.checkpoint_path:
        base_dir = os.path.dirname(os.path.abspath(mission.checkpoint_path))
    own_steps = {s.id: s for s in mission.steps or []}
    mission.id = _checked_id(data["id"], source)
    goal = from_reference(data["goal"], base_dir)
    if not isinstance(goal, LargeValue):
        mission.goal = goal
    elif not final:  # resuming: the goal is needed; a mirror already has it
        mission.goal = goal.load()
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
            result = from_reference(entry.get("result"), base_dir)
            step.result = result if isinstance(result, LargeValue) else decode_value(result)
            step.result_note = entry.get("result_note")
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


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A save file or checkpoint with its journal replayed: the latest state it records.

    Journal lines newer than the full write (``seq`` > its ``journal_seq``) replace the
    state of their step; a torn last line (a crash mid-write) is ignored.
    """
    import json

    data = read_mission_file(path)
    try:
        with open(journal_path(os.fspath(path)), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return data
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"journal of {path} cannot be read: {exc}") from None
    done = data.get("journal_seq") or 0
    index = {entry["id"]: i for i, entry in enumerate(data.get("steps") or [])}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # torn by a crash while it was written
            raise CheckpointError(f"journal of {path} is corrupt at line {number}") from None
        if not isinstance(record, dict) or record.get("seq", 0) <= done:
            continue
        state = record.get("step")
        if isinstance(state, dict) and state.get("id") in index:
            i = index[state["id"]]
            data["steps"][i] = {**data["steps"][i], **state}
    return data


def load_into(mission: AnyMission, path: str | os.PathLike) -> AnyMission:
    """``Mission.resume``: apply the save file (or checkpoint and journal) at ``path``."""
    data = read_checkpoint(path)
    try:
        apply_state(
            mission,
            data,
            source=f"mission file {os.fspath(path)}",
            base_dir=os.path.dirname(os.path.abspath(path)),
        )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"mission file {path} is invalid: {exc}") from None
    return mission


def save_mission(mission: MissionLike, path: str | os.PathLike) -> str:
    """``Mission.save``: write the mission as human-readable JSON (atomically)."""
    target = os.fspath(path)
    write_json_atomic(target, mission_state(mission, home=target))
    _remove(journal_path(target))  # the file holds everything: an old journal must not replay
    return target


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


#: A full checkpoint is rewritten after this many journal lines at least (and at least one
#: line per step of the mission), so its O(mission) cost is O(1) per step on average.
MIN_JOURNAL_LINES = 64


class Checkpointer:
    """Keeps a running mission's checkpoint current at a cost in proportion to the work.

    A full write when the run starts; then one JSON line per finished step appended to the
    journal beside the checkpoint (O(that step)); a full rewrite only after as many lines as
    the mission has steps (O(1) per step amortised) and at the end. Resuming replays the
    journal onto the last full write (:func:`read_checkpoint`), so any point works.

    The events are the record of a mission: a checkpoint is a convenience copy for
    resuming, so one that cannot be written is a RuntimeWarning (once), never a failure.
    """

    def __init__(self, mission: MissionLike, path: str) -> None:
        self.mission = mission
        self.path = path
        self.journal = journal_path(path)
        self.seq = 0
        self.lines_since_full = 0
        self._handle: Any = None
        self._warned = False

    def _failed(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"could not checkpoint mission {self.mission.id} to {self.path}: "
                f"{describe_error(exc)} (the mission goes on; its events are the record)",
                RuntimeWarning,
                stacklevel=3,
            )

    def save_full(self) -> None:
        """Write the whole state (journal_seq says which journal lines it holds)."""
        try:
            state = mission_state(self.mission, home=self.path)
            state["journal_seq"] = self.seq
            # Not fsynced: a checkpoint is a convenience copy; the store is the record.
            write_json_atomic(self.path, state, durable=False, compact=True)
        except Exception as exc:
            self._failed(exc)
            return
        self.lines_since_full = 0
        self._close_journal()  # its lines are in the full write now
        _remove(self.journal)

    def _close_journal(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except OSError as exc:  # a full disk refuses the buffered rest of a line
                self._failed(exc)

    def step_finished(self, step: MissionStep) -> None:
        """Record one step's state: a journal line, or now and then a full write."""
        self.seq += 1
        if self.lines_since_full >= max(MIN_JOURNAL_LINES, len(self.mission.steps or ())):
            self.save_full()
            return
        import json

        try:
            state = step_state(step, include_executor=False, home=self.path)
            line = json.dumps({"seq": self.seq, "step": state}, ensure_ascii=False)
            if self._handle is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(self.journal, flags, 0o600)
                self._handle = os.fdopen(fd, "a", encoding="utf-8")
            self._handle.write(line + "\n")
            self._handle.flush()
            self.lines_since_full += 1
        except Exception as exc:
            self._failed(exc)

    def close(self) -> None:
        """The run ended: a last full write (which drops the journal)."""
        self.save_full()
        self._close_journal()
