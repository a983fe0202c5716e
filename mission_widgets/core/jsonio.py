"""Small JSON file helpers shared by checkpoints and mission save files."""

from __future__ import annotations

import json
import os
import threading

from .errors import CheckpointError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def write_json_atomic(
    path: str | os.PathLike, data: Any, *, durable: bool = True, compact: bool = False
) -> str:
    """Write ``data`` as indented JSON via a temp file and a rename: never a half file.

    Serialises first, so an unserialisable value raises before anything is touched.
    ``durable=False`` skips the fsync (for frequent convenience copies); ``compact=True``
    writes one line (several times faster: for checkpoints, which people rarely read).
    """
    target = os.fspath(path)
    text = json.dumps(
        data,
        indent=None if compact else 2,
        separators=(",", ":") if compact else None,
        ensure_ascii=False,
        default=_refuse,
    )
    folder, name = os.path.split(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    # Unique per process and thread; no tempfile/pathlib import (they cost worker start-up).
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        # 0600 like mkstemp: save files can hold results and session memory.
        # Never through a link planted in the folder (O_NOFOLLOW).
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _refuse(value: Any) -> Any:
    raise TypeError(f"value of type {type(value).__name__} is not JSON serialisable: {value!r}")


def read_json_file(path: str | os.PathLike, kind: str, format_tag: str) -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json_atomic`; a clear error names the file."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise CheckpointError(f"{kind} file not found: {source}") from None
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{kind} file {source} is not UTF-8 text ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " (the file looks truncated)" if exc.pos >= len(text.rstrip()) else ""
        raise CheckpointError(
            f"{kind} file {source} is corrupt: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}{hint}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != format_tag:
        raise CheckpointError(
            f'{source} is not a {kind} file (expected a JSON object with "format": "{format_tag}")'
        )
    return data
