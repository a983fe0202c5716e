"""``status()``: one pandas row per mission of a store, read from the store alone.

It takes no lock of the orchestrator (so it answers while the watcher waits on a busy
store) and never loads a mission's state. The frame of every row is cached; each call reads
only the rows changed since the cached answer (every row carries the store's change counter
of its last change, kept by triggers for any writer: a new status or stall reason alone is
seen) and replaces or appends them, so a call after a change costs in proportion to the
change plus one copy of the frame, never a rebuild of the rows that did not change. Rows
removed (forget, prune) are rare: the cache is then built again.
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

#: Columns computed here, each shown after a stored column: per row when the row is read in
#: :func:`_records_frame` (cached with it; elapsed_s of unfinished rows is brought to now on
#: every call). waiting_on comes last, from the kernel's state, per call.
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
    row_version: int  # the store's change counter the frame is up to date with
    rows_deleted: int  # the store's removal counter when the frame was built
    frame: pd.DataFrame  # every row, in rowid order, with the per-row computed columns


class StatusTable:
    """Builds the ``status()`` frame of one store from a cache of every row, patched with
    the rows changed since (store.change_versions / status_records(changed_since=...))."""

    def __init__(self, store: MissionStore) -> None:
        self.store = store
        self._cache: _Cached | None = None
        self._lock = threading.Lock()  # guards the cache only, never held across store reads

    def frame(self, waiting_on: dict[str, str] | None = None) -> pd.DataFrame:
        """The status frame; ``waiting_on`` maps missions that wait for a person to the step
        they wait on (the column is None for the others)."""
        rows = self._rows()
        stored = frame_columns()[: -len(_KERNEL_COLUMNS)]
        frame = rows[stored].reset_index(drop=True)  # a copy: callers may edit
        _elapsed(frame)  # unfinished rows: elapsed until now
        frame["waiting_on"] = (
            frame["id"].map(waiting_on).astype(object).where(frame["id"].isin(waiting_on), None)
            if waiting_on
            else None
        )
        frame["health"] = _health(frame)
        return frame

    def _rows(self) -> pd.DataFrame:
        """Every row, up to date: the cache plus what changed since it was made."""
        version, deleted = self.store.change_versions()
        with self._lock:
            cached = self._cache
        if cached is not None and cached.rows_deleted == deleted:
            if cached.row_version == version:
                return cached.frame
            changed = self.store.status_records(changed_since=cached.row_version)
            rows = _patched(cached.frame, _records_frame(changed))
        else:
            rows = _records_frame(self.store.status_records())
        with self._lock:
            # Threads may race here: keep the newest answer (versions only grow).
            if self._cache is None or (self._cache.rows_deleted, self._cache.row_version) <= (
                deleted,
                version,
            ):
                self._cache = _Cached(version, deleted, rows)
        return rows


def _patched(cached: pd.DataFrame, changed: pd.DataFrame) -> pd.DataFrame:
    """``cached`` with the rows of ``changed`` replaced or appended, in rowid order."""
    import numpy as np
    import pandas as pd

    if changed.empty:
        return cached
    old_ids = cached["rowid"].to_numpy()
    new_ids = changed["rowid"].to_numpy()
    replaced = np.isin(old_ids, new_ids)
    if not replaced.any() and (len(old_ids) == 0 or new_ids[0] > old_ids[-1]):
        # The common case: new missions (submitted last) are appended.
        return pd.concat([cached, changed], ignore_index=True)
    frame = pd.concat([cached[~replaced], changed], ignore_index=True)
    order = frame["rowid"].to_numpy().argsort(kind="stable")
    return frame.take(order).reset_index(drop=True)


def _health(frame: pd.DataFrame) -> Any:
    """The ``health`` column: "ok", or the flag ("no_heartbeat" | "no_progress") of a
    mission that is still going (a finished one is past health)."""
    import numpy as np
    import pandas as pd

    flagged = frame["stall_reason"].isin(STALL_REASONS) & frame["finished_at"].isna()
    values = np.where(flagged, frame["stall_reason"], HEALTHY)
    return pd.Series(values, index=frame.index, dtype=object)  # as an empty frame has it


def _elapsed(frame: pd.DataFrame) -> None:
    """elapsed_s: to now for unfinished rows (so it is recomputed on every call)."""
    import numpy as np

    unfinished = frame["finished_at"].isna().to_numpy()
    if not unfinished.any():
        return
    started = frame["started_at"].to_numpy(dtype="datetime64[ns]")
    now = np.datetime64(int(time.time() * 1e9), "ns")
    elapsed = frame["elapsed_s"].to_numpy(dtype="float64", copy=True)
    elapsed[unfinished] = (now - started[unfinished]) / np.timedelta64(1, "s")
    frame["elapsed_s"] = elapsed


def _records_frame(records: tuple[list[str], list[tuple[Any, ...]]]) -> pd.DataFrame:
    """Rows as the cached frame: rowid, the stored columns and elapsed_s, with fixed dtypes
    (an empty store gives the same shape), converted by numpy calls per column (a few
    pandas calls per column were most of a call that read a handful of changed rows)."""
    import numpy as np
    import pandas as pd

    columns = _arrays(records)
    utc = pd.DatetimeTZDtype("ns", "UTC")
    started, finished = columns["_s_started_at"], columns["_s_finished_at"]
    data: dict[str, Any] = {"rowid": columns["rowid"]}
    for name in frame_columns()[: -len(_KERNEL_COLUMNS)]:
        if name == "elapsed_s":
            data[name] = np.where(np.isnan(finished), time.time(), finished) - started
        elif name in _TIME_COLUMNS:
            data[name] = pd.array(columns[name].view("M8[ns]"), dtype=utc)
        elif name == "status":
            data[name] = pd.Categorical.from_codes(
                columns[name], dtype=pd.CategoricalDtype(list(MISSION_STATUSES))
            )
        elif name == "pid":
            data[name] = pd.arrays.IntegerArray(columns[name], columns["_pid_mask"])
        elif columns[name].dtype == object:  # text stays object (pandas would infer str)
            data[name] = pd.Series(columns[name], dtype=object, copy=False)
        else:
            data[name] = columns[name]
    return pd.DataFrame(data, copy=False)


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
