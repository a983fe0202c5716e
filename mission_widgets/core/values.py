"""Values a mission keeps (results, goals): what can be saved, and large ones kept in files.

* A result that neither JSON nor pickle can hold is kept as its ``repr`` with a
  RuntimeWarning (:func:`savable`): the mission ends with its real status and the note
  says why (``result_note`` on the step and in its events).
* A value larger than :data:`LARGE_VALUE_BYTES` is written once, as a file beside the
  checkpoint, and referenced from the JSON as ``{"$large": relative path, "bytes": N,
  "summary": "..."}`` (:class:`LargeValue`); it is read only when someone asks for it.
"""

from __future__ import annotations

import json
import os
import warnings

from .errors import CheckpointError, describe_error
from .pickling import decode_value, pickle_b64

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Values whose JSON (or pickle) is larger than this go to a file of their own.
LARGE_VALUE_BYTES = 1024 * 1024
#: Characters of a large value's summary.
SUMMARY_CHARS = 200


def summarize(value: Any, limit: int = SUMMARY_CHARS) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def savable(value: Any, where: str) -> tuple[Any, str | None]:
    """``(value, None)`` when JSON or pickle can hold ``value``; else ``(repr(value), note)``
    with a RuntimeWarning: a result nobody can save must not lose the mission."""
    try:
        json.dumps(value)
        return value, None
    except (TypeError, ValueError):
        pass
    try:
        pickle_b64(value)
        return value, None
    except Exception as exc:
        note = f"kept as its repr: a {type(value).__name__} cannot be saved ({describe_error(exc)})"
    warnings.warn(f"{where} returned a value that {note}", RuntimeWarning, stacklevel=3)
    return repr(value), note


class LargeValue:
    """A reference to a value stored in a file of its own; :meth:`load` reads it."""

    __slots__ = ("nbytes", "path", "summary")

    def __init__(self, path: str, nbytes: int, summary: str) -> None:
        self.path = path
        self.nbytes = nbytes
        self.summary = summary

    def load(self) -> Any:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return decode_value(json.load(handle))
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"large value file {self.path} cannot be read: {describe_error(exc)}"
            ) from None

    def describe(self) -> str:
        return f"{self.summary} [{self.nbytes:,} bytes, stored in {os.path.basename(self.path)}]"

    def reference(self, base_dir: str | None) -> dict[str, Any]:
        """The JSON that stands for this value in a file saved in ``base_dir`` (None: by its
        absolute path). ``path`` is where it was written, for readers that do not know
        ``base_dir`` (a kernel mirroring the mission from the store's final state)."""
        where = os.path.abspath(self.path)
        return {
            "$large": where if base_dir is None else os.path.relpath(self.path, base_dir),
            "path": where,
            "bytes": self.nbytes,
            "summary": self.summary,
        }

    def __repr__(self) -> str:
        return f"LargeValue({self.path!r}, {self.nbytes} bytes)"


class LoadedWhenRead:
    """An attribute held in ``slot`` whose value may be a :class:`LargeValue` reference: read,
    the reference is loaded (once) and its value kept; ``slot`` itself gives it unloaded."""

    def __init__(self, slot: str) -> None:
        self.slot = slot

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = getattr(obj, self.slot)
        if isinstance(value, LargeValue):
            value = value.load()
            setattr(obj, self.slot, value)
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.slot, value)


def store_large(text: str, folder: str, name: str, summary: str) -> LargeValue:
    """Write ``text`` (the JSON of ``encoded``) to ``folder/name.json`` once (0600)."""
    if os.path.islink(folder):  # a link planted in a store points outside it
        raise OSError(f"{folder} is a symbolic link: refusing to write through it")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, name + ".json")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | nofollow, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return LargeValue(path, len(text.encode("utf-8")), summary)


def from_reference(data: Any, base_dir: str | None) -> Any:
    """A :class:`LargeValue` for a ``{"$large": ...}`` reference, else ``data`` unchanged."""
    if not (isinstance(data, dict) and "$large" in data):
        return data
    path = data["$large"]
    if not isinstance(path, str) or ".." in path.split(os.sep):
        raise CheckpointError(f"invalid large value reference {data!r}")
    if not os.path.isabs(path):
        if base_dir is None and isinstance(data.get("path"), str):
            path = data["path"]  # where the writer put it (the folder may have moved since)
        else:
            path = os.path.join(base_dir or ".", path)
    if not os.path.dirname(path).endswith(".large"):  # only files this module wrote
        raise CheckpointError(f"invalid large value reference {data!r}")
    return LargeValue(path, int(data.get("bytes", 0)), str(data.get("summary", "")))
