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
    import pandas as pd

#: Integer columns of the frame (fixed dtypes: an empty store gives the same shape).
_INT_COLUMNS = ("rowid", "n_steps", "n_done", "n_failed", "prompt_tokens", "completion_tokens")
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
    import numpy as np
    import pandas as pd

    columns, rows = records
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for name in _INT_COLUMNS:
        frame[name] = frame[name].astype("int64")
    frame["progress"] = frame["progress"].astype("float64")
    # NULL (a call of unknown price) -> NaN: unknown, never 0.
    frame["cost_usd"] = pd.to_numeric(frame["cost_usd"], errors="coerce").astype("float64")
    started = frame["started_at"].to_numpy(dtype="float64", na_value=np.nan)
    finished = frame["finished_at"].to_numpy(dtype="float64", na_value=np.nan)
    frame["elapsed_s"] = np.where(np.isnan(finished), time.time(), finished) - started
    for name in _TIME_COLUMNS:
        frame[name] = pd.to_datetime(
            frame[name].to_numpy(dtype="float64", na_value=np.nan), unit="s", utc=True
        ).as_unit("ns")
    frame["status"] = pd.Categorical(frame["status"], categories=MISSION_STATUSES)
    frame["pid"] = frame["pid"].astype("Int64")
    # Text columns get one dtype whatever the rows hold (pandas infers str, or object when
    # all are None), so patched frames concatenate without changing dtypes; a missing text
    # stays None.
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            frame[name] = column.astype(object).where(column.notna(), None)
    return frame
