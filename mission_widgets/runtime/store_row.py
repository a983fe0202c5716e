"""The typed record of one ``missions`` row, for mypy and readers (never imported by the worker).

Rows stay plain dicts at run time: ``MissionStore.row()``, ``rows()`` and ``rows_by_id()`` are
annotated with :class:`MissionRow`, so ``row["status"]`` is checked by mypy and costs nothing.
Every key is present in a row read with all columns (``rows()`` with chosen columns returns
those keys only).
"""

from __future__ import annotations

from typing import TypedDict


class MissionRow(TypedDict):
    id: str
    goal: str
    status: str
    backend: str | None
    owner: str | None
    pid: int | None
    pid_started: float | None
    submitted_at: float | None
    started_at: float | None
    finished_at: float | None
    last_heartbeat: float | None
    last_activity: float | None
    n_steps: int
    n_done: int
    n_failed: int
    progress: float
    error: str | None
    stall_reason: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    state_json: str | None  # only in stores written before mission_states: use final_state()
    claimed_by: str | None
    claimed_at: float | None
    result_summary: str | None  # a short preview of the mission's result (Mission.result)
    cost_usd: float | None  # USD of the model calls; None once a call had no known price
    row_version: int  # the store's change counter at the row's last change (status() cache)
    message: str | None  # the last message a step gave report_progress (bounded)
    made_by: str | None  # the release that submitted it (None: a store of format 0)


#: Every column, in table order (checked against the schema by the tests).
ROW_COLUMNS = tuple(MissionRow.__annotations__)
