"""``status()``: one pandas row per mission of a store, read from the store alone.

It takes no lock of the orchestrator (so it answers while the watcher waits on a busy
store) and never loads a mission's state. Every row is cached as typed numpy columns; each
call reads only the rows changed since the cached answer (every row carries the store's
change counter of its last change, kept by triggers for any writer: a new status or stall
reason alone is seen), writes them into those columns in place and appends new ones, so a
call after a change costs in proportion to the change plus building the frame from the
columns, never a rebuild of the rows that did not change. The conversions are numpy calls
on the changed rows (a handful of pandas calls per column of a small frame were most of a
call while three kernels shared a store). Rows removed (forget, prune) are rare: the cache
is then built again.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.mission import MISSION_STATUSES
from ..core.status import HEALTHY, STALL_REASONS
from ..runtime.store import STATUS_COLUMNS, MissionStore

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Integer columns of the frame (fixed dtypes: an empty store gives the same shape).
_INT_COLUMNS = ("n_steps", "n_done", "n_failed", "prompt_tokens", "completion_tokens")
_FLOAT_COLUMNS = ("progress", "cost_usd")
_TIME_COLUMNS = ("submitted_at", "started_at", "finished_at", "last_heartbeat", "last_activity")

#: Columns computed here, each shown after a stored column: elapsed_s (to now for unfinished
#: rows, so on every call). waiting_on comes last, from the kernel's state, per call.
COMPUTED_AFTER = {"elapsed_s": "finished_at"}
#: Columns computed last, on every call: the step a mission waits on (the kernel's mirror
#: knows it) and its health ("ok" | "no_heartbeat" | "no_progress", from stall_reason).
_KERNEL_COLUMNS = ("waiting_on", "health")


def frame_columns() -> list[str]:
    """The columns of ``status()`` in order, derived from the store's STATUS_COLUMNS (the
    one list of stored columns) and COMPUTED_AFTER: a column added to either appears here."""
    columns = list(STATUS_COLUMNS)
    for name, after in COMPUTED_AFTER.items():
        columns.insert(columns.index(after) + 1 if after in columns else len(columns), name)
    return [*columns, *_KERNEL_COLUMNS]


class _Cached(NamedTuple):
    row_version: int  # the store's change counter the columns are up to date with
    rows_deleted: int  # the store's removal counter when the columns were built
    columns: dict[str, np.ndarray]  # every row, in rowid order (see _arrays)


class StatusTable:
    """Builds the ``status()`` frame of one store from typed columns of every row, patched
    with the rows changed since (store.change_versions / status_records(changed_since=...))."""

    def __init__(self, store: MissionStore) -> None:
        self.store = store
        self._cache: _Cached | None = None
        # Guards the cache (patching it, building a frame from it), never held across
        # store reads.
        self._lock = threading.Lock()

    def frame(self, waiting_on: dict[str, str] | None = None) -> pd.DataFrame:
        """The status frame; ``waiting_on`` maps missions that wait for a person to the step
        they wait on (the column is None for the others)."""
        return self._frame(waiting_on or {})  # a new frame: callers may edit it

    def _frame(self, waiting_on: dict[str, str]) -> pd.DataFrame:
        """Every row, up to date: the cache plus what changed since it was made."""
        for _ in range(3):  # another thread patched the cache between our reads: again
            version, deleted = self.store.change_versions()
            cached = self._cache
            if cached is None or cached.rows_deleted != deleted:
                columns = _arrays(self.store.status_records())
                with self._lock:
                    if self._cache is cached:
                        self._cache = _Cached(version, deleted, columns)
                    return _to_frame(columns, waiting_on)
            if cached.row_version == version:
                with self._lock:
                    return _to_frame(cached.columns, waiting_on)
            changed = self.store.status_records(changed_since=cached.row_version)
            with self._lock:
                if self._cache is cached:  # patched by nobody else meanwhile
                    columns = _patch(cached.columns, _arrays(changed))
                    self._cache = _Cached(version, deleted, columns)
                    return _to_frame(columns, waiting_on)
        return _to_frame(_arrays(self.store.status_records()), waiting_on)


def _arrays(records: tuple[list[str], list[tuple[Any, ...]]]) -> dict[str, np.ndarray]:
    """Rows as typed numpy columns: rowid, ints, floats (NULL cost -> NaN: unknown, never
    0), times as int64 nanoseconds (NaT when NULL) plus their seconds (for elapsed_s),
    status as category codes, pid as values and a mask, text as objects (None if NULL)."""
    import numpy as np
    import pandas as pd

    names, rows = records
    n = len(rows)
    by_name = dict(zip(names, zip(*rows))) if rows else {name: () for name in names}
    columns: dict[str, np.ndarray] = {"rowid": np.array(by_name["rowid"], dtype=np.int64)}
    for name in _INT_COLUMNS:
        columns[name] = np.array(by_name[name], dtype=np.int64)
    for name in _FLOAT_COLUMNS:
        columns[name] = _floats(by_name[name])
    seconds = np.concatenate([_floats(by_name[name]) for name in _TIME_COLUMNS])
    # One pandas conversion for every time column: the rounding to_datetime(unit="s") has.
    stamps = pd.to_datetime(seconds, unit="s", utc=True).as_unit("ns").asi8
    for k, name in enumerate(_TIME_COLUMNS):
        columns[name] = stamps[k * n : (k + 1) * n]
        columns["_s_" + name] = seconds[k * n : (k + 1) * n]
    code = {status: i for i, status in enumerate(MISSION_STATUSES)}
    columns["status"] = np.array([code.get(s, -1) for s in by_name["status"]], dtype=np.int8)
    pid = _floats(by_name["pid"])
    columns["_pid_mask"] = np.isnan(pid)
    columns["pid"] = np.where(columns["_pid_mask"], 0, pid).astype(np.int64)
    for name in STATUS_COLUMNS:
        if name not in columns:
            text = np.empty(n, dtype=object)
            text[:] = by_name[name]
            columns[name] = text
    return columns


def _floats(values: tuple[Any, ...]) -> np.ndarray:
    import numpy as np

    try:
        return np.array(values, dtype=np.float64)  # None -> NaN
    except (TypeError, ValueError):  # text in a number column (another writer): NaN
        import pandas as pd

        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )


def _patch(cached: dict[str, np.ndarray], changed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``cached`` with the rows of ``changed`` written over theirs (in place) and the new
    ones appended (new arrays), in rowid order."""
    import numpy as np

    if not len(changed["rowid"]):
        return cached
    rowids = cached["rowid"]
    at = np.searchsorted(rowids, changed["rowid"])
    known = np.zeros(len(at), dtype=bool)
    inside = at < len(rowids)
    known[inside] = rowids[at[inside]] == changed["rowid"][inside]
    if known.any():
        for name, values in cached.items():
            values[at[known]] = changed[name][known]
    if known.all():
        return cached
    new = ~known
    merged = {name: np.concatenate([old, changed[name][new]]) for name, old in cached.items()}
    if len(rowids) and changed["rowid"][new].min() < rowids[-1]:
        # Rows older than the newest known (rare: a row restored by a repair): re-sort.
        order = merged["rowid"].argsort(kind="stable")
        merged = {name: values[order] for name, values in merged.items()}
    return merged


def _to_frame(columns: dict[str, np.ndarray], waiting_on: dict[str, str]) -> pd.DataFrame:
    """The frame of the stored and computed columns, in frame_columns() order (copies),
    built in one construction (each column added to a frame afterwards costs as much)."""
    import numpy as np
    import pandas as pd

    utc = pd.DatetimeTZDtype("ns", "UTC")
    started, finished = columns["_s_started_at"], columns["_s_finished_at"]
    data: dict[str, Any] = {}
    for name in frame_columns()[: -len(_KERNEL_COLUMNS)]:
        if name == "elapsed_s":  # unfinished rows: until now
            data[name] = np.where(np.isnan(finished), time.time(), finished) - started
        elif name in _TIME_COLUMNS:
            data[name] = pd.array(columns[name].view("M8[ns]"), dtype=utc, copy=True)
        elif name == "status":
            data[name] = pd.Categorical.from_codes(
                columns[name].copy(), dtype=pd.CategoricalDtype(list(MISSION_STATUSES))
            )
        elif name == "pid":
            data[name] = pd.arrays.IntegerArray(columns[name].copy(), columns["_pid_mask"].copy())
        elif columns[name].dtype == object:
            data[name] = _texts(columns[name].copy())
        else:
            data[name] = columns[name].copy()
    # Copies (above): the cache is patched in place, and callers may edit what they get.
    steps = np.full(len(finished), None, dtype=object)
    if waiting_on:
        steps[:] = list(map(waiting_on.get, columns["id"]))
    data["waiting_on"] = _texts(steps)
    # health: "ok", or the flag ("no_heartbeat" | "no_progress") of a mission still going
    # (a finished one is past health).
    stall = columns["stall_reason"]
    flagged = np.isin(stall, list(STALL_REASONS)) & np.isnan(finished)
    data["health"] = _texts(np.where(flagged, stall, HEALTHY).astype(object))
    return pd.DataFrame(data, copy=False)


def _texts(values: np.ndarray) -> pd.Series:
    """An object column as such (pandas would infer its str dtype for text)."""
    import pandas as pd

    return pd.Series(values, dtype=object, copy=False)
