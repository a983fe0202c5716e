"""``status()``: one pandas row per mission of a store, read from the store alone.

It takes no lock of the orchestrator (so it answers while the watcher waits on a busy
store) and never loads a mission's state. Finished rows never change, so their part of
the frame is cached and only unfinished rows are read again.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..core.mission import MISSION_STATUSES
from ..runtime.store import STATUS_COLUMNS, MissionStore

if TYPE_CHECKING:
    import pandas as pd

#: Integer columns of the frame (fixed dtypes: an empty store gives the same shape).
_INT_COLUMNS = ("rowid", "n_steps", "n_done", "n_failed", "prompt_tokens", "completion_tokens")
_TIME_COLUMNS = ("submitted_at", "started_at", "finished_at", "last_heartbeat", "last_activity")


class StatusTable:
    """Builds the ``status()`` frame of one store, caching its finished and unfinished
    parts, each read again only when its signature in the store changes."""

    def __init__(self, store: MissionStore) -> None:
        self.store = store
        #: finished? -> (signature, frame of those rows)
        self._parts: dict[bool, tuple[tuple[Any, ...], pd.DataFrame]] = {}
        self._lock = threading.Lock()  # guards the cache only, never held across store reads

    def frame(self, waiting_on: dict[str, str] | None = None) -> pd.DataFrame:
        """The status frame; ``waiting_on`` maps missions that wait for a person to the step
        they wait on (the column is None for the others)."""
        import pandas as pd

        done = self._part(True, tuple(self.store.finished_signature()))
        live_signature = self.store.rows(columns=_LIVE_SIGNATURE, where="WHERE finished_at IS NULL")
        live = self._part(False, tuple(live_signature[0].values())).copy()
        if live.empty:
            frame = done
        else:
            _elapsed(live)  # unfinished rows: elapsed until now
            frame = live if done.empty else pd.concat([done, live], ignore_index=True)
            frame = frame.iloc[frame["rowid"].to_numpy().argsort(kind="stable")]
        order = [*STATUS_COLUMNS[:10], "elapsed_s", *STATUS_COLUMNS[10:]]
        frame = frame[order].reset_index(drop=True)
        frame["waiting_on"] = (
            frame["id"].map(waiting_on).astype(object).where(frame["id"].isin(waiting_on), None)
            if waiting_on
            else None
        )
        return frame

    def _part(self, finished: bool, signature: tuple[Any, ...]) -> pd.DataFrame:
        """The frame of the finished (or unfinished) rows, cached under ``signature``."""
        with self._lock:
            cached = self._parts.get(finished)
        if cached is None or cached[0] != signature:
            cached = (signature, _records_frame(self.store.status_records(finished=finished)))
            with self._lock:
                self._parts[finished] = cached
        return cached[1]


#: Changes whenever an unfinished row changes (any event stamps last_activity; starts, pids,
#: heartbeats, statuses and stall flags are summed in): the cache key of the unfinished part.
_LIVE_SIGNATURE = (
    "COUNT(*) AS n",
    "TOTAL(rowid) AS r",
    "TOTAL(COALESCE(last_activity, 0) + COALESCE(last_heartbeat, 0)) AS t",
    "TOTAL(COALESCE(started_at, 0) + COALESCE(pid, 0) + progress + n_done + n_failed) AS s",
    "TOTAL(CASE status WHEN 'pending' THEN 1 WHEN 'planning' THEN 10 WHEN 'running' THEN 100"
    " WHEN 'stalled' THEN 1000 ELSE 10000 END) AS k",
    "TOTAL(LENGTH(COALESCE(stall_reason, '')) + LENGTH(COALESCE(error, ''))) AS e",
)


def _elapsed(frame: pd.DataFrame) -> None:
    """elapsed_s: to now for unfinished rows (so it is recomputed on every call)."""
    import numpy as np

    started = frame["started_at"].to_numpy(dtype="datetime64[ns]")
    finished = frame["finished_at"].to_numpy(dtype="datetime64[ns]")
    now = np.datetime64(int(time.time() * 1e9), "ns")
    frame["elapsed_s"] = (np.where(np.isnat(finished), now, finished) - started) / np.timedelta64(
        1, "s"
    )


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
    return frame
