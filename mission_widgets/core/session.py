"""SharedSession: memory shared by the steps of a mission (and missions of an orchestrator)."""

from __future__ import annotations

import json
import os
import threading

from .errors import CheckpointError
from .jsonio import read_json_file, write_json_atomic

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SESSION_FORMAT = "mission_widgets.session"


class SharedSession:
    """Thread-safe key/value memory plus the model the session works with.

    ``checkpoint(path)`` writes the memory as JSON atomically; ``restore_checkpoint(path)``
    reads it back. Values must be JSON serialisable to be checkpointed.
    """

    def __init__(self, model: Any = None) -> None:
        self.model = model
        self._memory: dict[str, Any] = {}
        self._lock = threading.RLock()

    def set_memory(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"session memory keys must be non-empty strings, got {key!r}")
        with self._lock:
            self._memory[key] = value

    def get_memory(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._memory.get(key, default)

    def memory(self) -> dict[str, Any]:
        """A shallow copy of the whole memory."""
        with self._lock:
            return dict(self._memory)

    def update_memory(self, values: dict[str, Any]) -> None:
        with self._lock:
            self._memory.update(values)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._memory

    def __len__(self) -> int:
        with self._lock:
            return len(self._memory)

    def __repr__(self) -> str:
        with self._lock:
            keys = sorted(self._memory)
        return f"SharedSession(model={self.model!r}, keys={keys!r})"

    def json_memory(self) -> dict[str, Any]:
        """The memory entries that survive JSON (others are left out)."""
        out = {}
        for key, value in self.memory().items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            out[key] = value
        return out

    def checkpoint(self, path: str | os.PathLike) -> str:
        """Write the memory to ``path`` atomically (temp file + rename); returns the path."""
        memory = self.memory()
        for key, value in memory.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"session memory key {key!r} cannot be checkpointed as JSON: {exc}"
                ) from None
        model = self.model if isinstance(self.model, str) else None
        write_json_atomic(path, {"format": SESSION_FORMAT, "model": model, "memory": memory})
        return os.fspath(path)

    def restore_checkpoint(self, path: str | os.PathLike) -> SharedSession:
        data = read_json_file(path, "session checkpoint", SESSION_FORMAT)
        memory = data.get("memory")
        if not isinstance(memory, dict):
            raise CheckpointError(f"session checkpoint {path} has no 'memory' object")
        with self._lock:
            self._memory = dict(memory)  # freshly parsed JSON: nobody else holds it
        if data.get("model") and self.model is None:
            self.model = data["model"]
        return self

    # Sessions travel to worker processes: the lock stays behind.
    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "memory": self.memory()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.model = state["model"]
        self._memory = dict(state["memory"])
        self._lock = threading.RLock()
