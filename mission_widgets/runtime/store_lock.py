"""Who holds a store's write lock: named in the error a kernel gets instead of freezing.

SQLite in WAL mode serialises writers with a POSIX lock on byte 120 (``WAL_WRITE_LOCK``) of
the ``-shm`` file. ``F_GETLK`` asks the kernel which process holds it; the store's rows map
that pid to its missions. When the lock cannot be read (another OS, a lock held by this
very process), a stopped (``T``) worker among the store's running missions is the usual
culprit. Imported only when a write has timed out.
"""

from __future__ import annotations

import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

WAL_WRITE_LOCK_OFFSET = 120  # sqlite3/src/wal.c: WALINDEX_LOCK_OFFSET + WAL_WRITE_LOCK
# struct flock on Linux (64-bit off_t): short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid (+ padding).
_FLOCK = "@hhqqi4x"


def wal_lock_holder(db_path: str) -> int | None:
    """The pid of another process holding the WAL write lock of ``db_path``, if any."""
    import fcntl

    try:
        fd = os.open(db_path + "-shm", os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, WAL_WRITE_LOCK_OFFSET, 1, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError:
        return None
    finally:
        os.close(fd)
    l_type, _, _, _, pid = struct.unpack(_FLOCK, answer)
    return pid if l_type != fcntl.F_UNLCK and pid > 0 else None


def stopped_pids(pids: Iterable[int]) -> list[int]:
    """The processes among ``pids`` that are stopped (SIGSTOP, a debugger)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a core dependency
        return []
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
                found.append(pid)
        except psutil.Error:
            continue
    return found


def describe_holder(db_path: str, running: list[tuple[str, int]]) -> str:
    """Who holds the store: ``running`` is the (mission id, pid) of unfinished missions."""
    holder = wal_lock_holder(db_path)
    if holder is not None:
        missions = [mid for mid, pid in running if pid == holder]
        state = " (stopped)" if stopped_pids([holder]) else ""
        if missions:
            return (
                f"held by process {holder}{state}, the worker of mission "
                f"{', '.join(missions)}; cancel that mission (or resume the process) to free it"
            )
        return f"held by process {holder}{state}, which runs no mission of this store"
    stopped = stopped_pids({pid for _, pid in running})
    if stopped:
        names = ", ".join(f"{mid} (pid {pid})" for mid, pid in running if pid in stopped)
        return (
            f"probably held by a stopped worker: mission {names}; cancel it (or resume it "
            "with SIGCONT) to free the store"
        )
    return "held by another process (not found)"
