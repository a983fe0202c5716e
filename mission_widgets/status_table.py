"""``status()``: one pandas row per mission of a store, read from the store alone.

It takes no lock of the orchestrator (so it answers while the watcher waits on a busy
store) and never loads a mission's state. Finished rows never change, so their part of
the frame is cached and only unfinished rows are read again.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .core.mission import MISSION_STATUSES
from .runtime.store import STATUS_COLUMNS, MissionStore

if TYPE_CHECKING:
    import pandas as pd

#: Integer columns of the frame (fixed dtypes: an empty store gives the same shape).
_INT_COLUMNS = ("rowid", "n_steps", "n_done", "n_failed", "prompt_tokens", "completion_tokens")
_TIME_COLUMNS = ("submitted_at", "started_at", "finished_at", "last_heartbeat", "last_activity")


class StatusTable:
    """Builds the ``status()`` frame of one store, caching its finished part."""

    def __init__(self, store: MissionStore) -> None:
        self.store = store
        self._cache: tuple[tuple[Any, ...], pd.DataFrame] | None = None
        self._lock = threading.Lock()  # guards the cache only, never held across store reads

    def frame(self, waiting_on: dict[str, str] | None = None) -> pd.DataFrame:
        """The status frame; ``waiting_on`` maps missions that wait for a person to the step
        they wait on (the column is None for the others)."""
        import pandas as pd

        signature = self.store.finished_signature()
        with self._lock:
            cached = self._cache
        if cached is None or cached[0] != signature:
            cached = (signature, _records_frame(self.store.status_records(finished=True)))
            with self._lock:
                self._cache = cached
        live = _records_frame(self.store.status_records(finished=False))
        if live.empty:
            frame = cached[1]
        elif cached[1].empty:
            frame = live
        else:
            frame = pd.concat([cached[1], live], ignore_index=True)
            frame = frame.iloc[frame["rowid"].to_numpy().argsort(kind="stable")]
        order = [*STATUS_COLUMNS[:10], "elapsed_s", *STATUS_COLUMNS[10:]]
        frame = frame[order].reset_index(drop=True)
        frame["waiting_on"] = (
            frame["id"].map(waiting_on).astype(object).where(frame["id"].isin(waiting_on), None)
            if waiting_on
            else None
        )
        return frame


def _records_frame(records: tuple[list[str], list[tuple[Any, ...]]]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    columns, rows = records
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for name in _INT_COLUMNS:
        frame[name] = frame[name].astype("int64")
    frame["progress"] = frame["progress"].astype("float64")
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
