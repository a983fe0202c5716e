"""Executors and helpers of the backend and fault-injection tests (tests/backends, tests/faults).

Executors live at module level so cloudpickle sends them to workers by reference.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from support.executors import touch


class CustomStop(BaseException):
    """A BaseException that is neither SystemExit nor KeyboardInterrupt."""


def raise_system_exit(task, session, context):
    raise SystemExit(7)


def raise_keyboard_interrupt(task, session, context):
    raise KeyboardInterrupt


def raise_custom_base(task, session, context):
    raise CustomStop("stopped by a custom BaseException")


def return_lock(task, session, context):
    """A result that cannot be pickled."""
    return threading.Lock()


def mark(path) -> None:
    touch(path, str(os.getpid()))


@contextlib.contextmanager
def immutable(*paths: str | os.PathLike) -> Iterator[None]:
    """Make files read-only even for root (``chattr +i``): writes fail with an I/O error,
    reads still work -- a store that became read-only under a running worker."""
    present = [str(p) for p in paths if os.path.exists(p)]
    for path in present:
        subprocess.run(["chattr", "+i", path], check=True)
    try:
        yield
    finally:
        for path in present:
            subprocess.run(["chattr", "-i", path], check=True)


def store_files(store_dir: str | os.PathLike) -> list[Path]:
    """The SQLite file of a store and its WAL (the files a write changes)."""
    db = Path(store_dir) / "store.sqlite"
    return [db, Path(str(db) + "-wal")]
