"""What ran when, read from events alone: each mission's planning, step attempts, backoff
gaps, waits for a person, stall flags, cancels and model calls as intervals in time.

:func:`mission_traces` is pure (events in, :class:`MissionTrace` out), so a picture or a
trace file can be built for missions of another process or after a restart from the store's
events, the same way every time. The timeline picture (:mod:`.timeline_draw`) and the trace
exports (Chrome trace-event JSON, OpenTelemetry spans) are all views of these intervals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .progress import status_style

#: How an attempt ended -> its colour in the picture: the package's palette (core.progress)
#: for the statuses, and colours of their own for what is not a status.
OUTCOME_COLOURS = {
    status: status_style(status).colour
    for status in ("succeeded", "failed", "cancelled", "stalled", "running")
}
OUTCOME_COLOURS.update(timeout="#ff8f00", skipped="#9e9e9e")
#: Backoff gaps, stall flags (a health flag, not the ``stalled`` status) and budget marks.
BACKOFF_COLOUR, STALL_FLAG_COLOUR, BUDGET_COLOUR = "#8d6e63", "#ad1457", "#d50000"
#: Events that say nothing about when things ran (many, and not drawn).
IGNORED_EVENTS = frozenset({"heartbeat", "progress"})
_WAIT_ENDS = frozenset(
    {"escalation_retry", "escalation_skip", "escalation_abort", "mission_resumed"}
)


@dataclass
class Attempt:
    """One attempt of one step: ``start``..``end`` (None while it runs)."""

    step_id: str
    attempt: int
    start: float
    end: float | None = None
    outcome: str = "running"
    error_type: str | None = None
    error_message: str | None = None


@dataclass
class Interval:
    """A span of time of some ``kind`` (plan, backoff, wait, stall); ``end`` None while open."""

    kind: str
    start: float
    end: float | None = None
    step_id: str | None = None
    label: str | None = None
    error_type: str | None = None


@dataclass
class ModelCall:
    """A model call (a ``model_call`` event: its timestamp is when the reply came)."""

    start: float
    end: float
    step_id: str | None
    attempt: int | None
    model: str | None
    purpose: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


@dataclass
class Mark:
    """A moment: ``cancel``, ``stall``, ``recovered``, ``escalation``, ``skip``, ``budget``."""

    kind: str
    at: float
    step_id: str | None = None
    label: str | None = None


@dataclass
class MissionTrace:
    """Everything one mission did, in time."""

    mission_id: str
    goal: str = ""
    status: str = "pending"
    model: str | None = None
    submitted: float | None = None
    start: float | None = None
    end: float | None = None
    error: str | None = None
    steps: list[str] = field(default_factory=list)
    plan: Interval | None = None
    attempts: list[Attempt] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)  # backoff, wait, stall
    model_calls: list[ModelCall] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum((c.prompt_tokens or 0) + (c.completion_tokens or 0) for c in self.model_calls)

    @property
    def cost_usd(self) -> float:
        """USD of the model calls; NaN when one of them had no known price."""
        total = 0.0
        for call in self.model_calls:
            if call.cost_usd is None:
                return math.nan
            total += call.cost_usd
        return total

    @property
    def last_time(self) -> float | None:
        """The latest moment this trace knows (for the extent of a picture)."""
        times = [t for t in (self.start, self.end, self.submitted) if t is not None]
        times += [a.end or a.start for a in self.attempts]
        times += [i.end or i.start for i in self.intervals]
        times += [c.end for c in self.model_calls] + [m.at for m in self.marks]
        return max(times) if times else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if type(value) is float:  # nearly always (a time)
        return value if value == value else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    return None


class _Builder:
    """Folds one mission's events, in order, into a :class:`MissionTrace`."""

    def __init__(self, trace: MissionTrace) -> None:
        self.t = trace
        self.open_attempts: dict[tuple[Any, int], Attempt] = {}
        self.open_backoff: dict[str, Interval] = {}
        self.open_wait: Interval | None = None
        self.open_stall: Interval | None = None

    def step(self, step_id: str | None) -> None:
        if step_id is not None and step_id not in self.t.steps:
            self.t.steps.append(step_id)

    def close_all(self, ts: float, outcome: str) -> None:
        for attempt in self.open_attempts.values():
            attempt.end, attempt.outcome = ts, outcome
        self.open_attempts.clear()
        for interval in [*self.open_backoff.values(), self.open_wait, self.open_stall]:
            if interval is not None and interval.end is None:
                interval.end = ts
        self.open_backoff.clear()
        self.open_wait = self.open_stall = None
        if self.t.plan is not None and self.t.plan.end is None:
            self.t.plan.end = ts

    def feed(self, e: Mapping[str, Any]) -> None:
        name = e.get("event")
        ts = _float(e.get("timestamp"))
        if ts is None or name in IGNORED_EVENTS:
            return
        t = self.t
        step_id: Any = e.get("step_id")
        if name == "mission_start":
            t.start, t.end, t.status = ts, None, "running"
            t.goal = e.get("goal") or t.goal
            t.model = e.get("model") or t.model
        elif name == "planner_start":
            t.plan = Interval("plan", ts)
        elif name in ("planner_done", "mission_planned"):
            for spec in e.get("steps") or ():
                if isinstance(spec, Mapping):
                    self.step(spec.get("id"))
            if name == "planner_done" and t.plan is not None and t.plan.end is None:
                t.plan.end, t.plan.error_type = ts, e.get("error_type")
        elif name == "step_start":
            self.step(step_id)
            attempt = _int(e.get("attempt")) or 1
            backoff = self.open_backoff.pop(step_id, None)
            if backoff is not None:
                backoff.end = ts
            self.open_attempts[(step_id, attempt)] = a = Attempt(step_id, attempt, ts)
            t.attempts.append(a)
        elif name in ("step_success", "step_failure"):
            ended = self.open_attempts.pop((step_id, _int(e.get("attempt")) or 1), None)
            if ended is not None:
                a = ended
                a.end = ts
                a.error_type, a.error_message = e.get("error_type"), e.get("error_message")
                a.outcome = "succeeded" if name == "step_success" else "failed"
                if a.error_type == "timeout":
                    a.outcome = "timeout"
        elif name == "model_call":
            duration = (_float(e.get("duration_ms")) or 0.0) / 1000.0
            t.model_calls.append(
                ModelCall(
                    start=ts - duration,
                    end=ts,
                    step_id=step_id,
                    attempt=_int(e.get("attempt")),
                    model=e.get("model"),
                    purpose=e.get("purpose"),
                    prompt_tokens=_int(e.get("prompt_tokens")),
                    completion_tokens=_int(e.get("completion_tokens")),
                    cost_usd=_float(e.get("cost_usd")),
                )
            )
        elif name == "retry_start":
            self.open_backoff[step_id] = iv = Interval("backoff", ts, step_id=step_id)
            delay = _float(e.get("delay_secs"))
            iv.label = None if delay is None else f"backoff {delay:g} s"
            t.intervals.append(iv)
        elif name == "mission_waiting":
            self.open_wait = Interval("wait", ts, step_id=step_id, label=e.get("reason"))
            t.intervals.append(self.open_wait)
        elif name in _WAIT_ENDS:
            if self.open_wait is not None:
                self.open_wait.end = ts
                self.open_wait = None
            if name.startswith("escalation_"):
                t.marks.append(Mark("escalation", ts, step_id, e.get("reason") or name))
        elif name == "step_done" and e.get("resolved_by") == "decision":
            t.marks.append(Mark("skip", ts, step_id, "skipped by a person's decision"))
        elif name == "step_skipped":
            self.step(step_id)
            t.marks.append(Mark("skip", ts, step_id, e.get("reason") or "skipped"))
        elif name == "mission_stall":
            reason = e.get("reason") or e.get("error_message") or "stall"
            t.marks.append(Mark("stall", ts, step_id, reason))
            if self.open_stall is None:
                self.open_stall = Interval("stall", ts, step_id=step_id, label=reason)
                t.intervals.append(self.open_stall)
        elif name == "mission_recovered":
            t.marks.append(Mark("recovered", ts, step_id, e.get("reason") or "recovered"))
            if self.open_stall is not None:
                self.open_stall.end = ts
                self.open_stall = None
        elif name == "budget_exceeded":
            t.marks.append(Mark("budget", ts, step_id, e.get("reason") or "budget"))
        elif name == "mission_done":
            raw = e.get("status")  # a MissionStatus in an audit log, a str from the store
            status = str(getattr(raw, "value", raw) or "failed")
            t.status, t.end, t.error = status, ts, e.get("error_message")
            self.close_all(ts, "cancelled" if status == "cancelled" else status)
            if status == "cancelled":
                t.marks.append(Mark("cancel", ts, None, t.error or "cancelled"))


def mission_traces(
    events: Iterable[Mapping[str, Any]], info: Mapping[str, Mapping[str, Any]] | None = None
) -> list[MissionTrace]:
    """One :class:`MissionTrace` per mission of ``events`` (in order of first appearance,
    missions of ``info`` first in its order). ``info`` maps mission ids to what a store row
    says (``goal``, ``status``, ``submitted_at``, ``model``), for missions with few events."""
    builders: dict[str, _Builder] = {}
    for mission_id, row in (info or {}).items():
        trace = MissionTrace(
            mission_id,
            goal=str(row.get("goal") or ""),
            status=str(row.get("status") or "pending"),
            model=row.get("model"),
            submitted=_float(row.get("submitted_at")),
        )
        builders[mission_id] = _Builder(trace)
    for event in events:
        owner = event.get("mission_id")
        if not isinstance(owner, str):
            continue
        builder = builders.get(owner)
        if builder is None:
            builder = builders[owner] = _Builder(MissionTrace(owner))
        builder.feed(event)
    return [b.t for b in builders.values()]


#: The fold of :func:`mission_traces`, for a reader fed events as they come (the live span
#: export): ``TraceFold(MissionTrace(id)).feed(event)``, the trace in ``.t``.
TraceFold = _Builder


def concurrency(traces: Iterable[MissionTrace], now: float) -> list[tuple[float, int]]:
    """How many missions ran at each moment: ``[(time, n running from then on), ...]``."""
    changes: list[tuple[float, int]] = []
    for trace in traces:
        if trace.start is not None:
            changes.append((trace.start, 1))
            changes.append((trace.end if trace.end is not None else now, -1))
    changes.sort(key=lambda change: (change[0], change[1]))
    steps: list[tuple[float, int]] = []
    running = 0
    for at, delta in changes:
        running += delta
        if steps and steps[-1][0] == at:
            steps[-1] = (at, running)
        else:
            steps.append((at, running))
    return steps
