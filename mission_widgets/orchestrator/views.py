"""What ran when, as pictures and trace files: ``timeline()``, ``export_trace()`` and
``export_spans()`` of MissionOrchestrator, read from the store's events alone; and what it
cost: ``budget_used()``, read from the orchestrator's budget ledger; and ``log_tail()``.

So they show missions of other processes, and missions that ended while the kernel was
down, the same way as this orchestrator's own. :class:`MissionViews` owns no state (like
MissionControl): it reads ``self.store``, ``self.max_concurrent`` and ``self._budget_ledger``.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..core.budget import Budget, SharedLedger, new_ledger
from ..core.timeline import IGNORED_EVENTS, MissionTrace, mission_traces
from ..core.timeline_draw import PAGE_SIZE, Timeline

if TYPE_CHECKING:
    from ..runtime.backend import Backend
    from ..runtime.store import MissionStore
    from .otel_live import LiveSpans

_ROW_FIELDS = ("id", "goal", "status", "submitted_at", "model")


def _ids(ids: str | Iterable[str] | None) -> list[str] | None:
    if ids is None:
        return None
    if isinstance(ids, str):
        return [ids]
    found = list(ids)
    bad = [i for i in found if not isinstance(i, str)]
    if bad:
        raise TypeError(f"ids must be mission id strings, got {bad[0]!r}")
    return found


@contextmanager
def _no_collection_while_building() -> Iterator[None]:
    """The cyclic GC held off while the traces are built: they are many objects that all
    survive, which it would traverse again and again as they grow, for nothing (a third
    of the CPU time of reading 10,000 missions: bench/RESULTS-timeline.md). Turned back on
    only if it was on; what other threads leave for it meanwhile waits a second or two."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def read_traces(store: MissionStore, ids: str | Iterable[str] | None = None) -> list[MissionTrace]:
    """The traces of the store's missions (all, or ``ids`` in that order), from their events
    (read in one query, less those that say nothing about time)."""
    wanted = _ids(ids)
    if wanted is None:
        info = {row["id"]: dict(row) for row in store.rows(_ROW_FIELDS)}
    else:
        found = store.rows_by_id(wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"no mission {missing[0]!r} in the store {store.root}")
        info = {i: dict(found[i]) for i in dict.fromkeys(wanted)}
    with _no_collection_while_building():
        return mission_traces(store.events_of(wanted, skip=IGNORED_EVENTS), info)


class MissionViews:
    """``timeline()``, ``export_trace()``, ``export_spans()`` (mixed into
    MissionOrchestrator; no state of its own)."""

    store: MissionStore
    max_concurrent: int
    _budget_ledger: SharedLedger | None

    def timeline(
        self,
        ids: str | Iterable[str] | None = None,
        *,
        steps: bool = True,
        page_size: int | None = PAGE_SIZE,
        width: float = 960,
    ) -> Timeline:
        """A Gantt picture of the missions (all in the store, or ``ids``), from their events:
        a row per mission (expandable into its steps with ``steps``), each attempt a segment
        coloured by how it ended, backoff gaps, waits for a person (hatched), stall flags,
        cancels (✕), model calls (ticks; tokens and cost in their tooltips), a lane of how
        full the concurrency window was and a "now" line while missions run.

        ``page_size`` missions per picture (``.page(n)`` for the others; None: all in one).
        Shows itself in a notebook; ``.save("x.svg" | "x.html")``; ``.to_svg()`` /
        ``.to_html()`` give the text (the panel's Timeline view shows ``to_html()``).
        """
        return Timeline(
            read_traces(self.store, ids),
            steps=steps,
            window=self.max_concurrent,
            page_size=page_size,
            width=width,
        )

    def export_trace(
        self, path: str | os.PathLike[str], ids: str | Iterable[str] | None = None
    ) -> str:
        """Write the missions (all, or ``ids``) as Chrome trace-event JSON: opens in
        https://ui.perfetto.dev and chrome://tracing. A process per mission, a thread per
        step; attempts, planning, waits, backoffs and model calls as slices; stalls,
        cancels and decisions as instants; missions running at once as a counter."""
        from ..core.trace_chrome import chrome_trace

        target = os.fspath(path)
        text = json.dumps(chrome_trace(read_traces(self.store, ids)))  # json.dump: 5x slower
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        return target

    def export_spans(
        self, tracer_provider: Any = None, ids: str | Iterable[str] | None = None
    ) -> int:
        """Emit the missions (all, or ``ids``) as OpenTelemetry spans after the GenAI
        semantic conventions, with the events' real times, through ``tracer_provider`` (the
        global one by default); returns how many spans were made. Needs the ``[otel]`` extra
        (``pip install "mission-widgets[otel]"``); see :mod:`.otel_spans`."""
        try:
            from .otel_spans import export_spans
        except ImportError as exc:  # the extra is not installed
            raise ImportError(
                "export_spans needs OpenTelemetry: pip install 'mission-widgets[otel]'"
            ) from exc
        return export_spans(read_traces(self.store, ids), tracer_provider)

    def budget_used(self) -> dict[str, Any] | None:
        """The orchestrator's budget (``MissionOrchestrator(budget=...)``) and what its
        missions used of it: ``{"budget": {limits}, "calls", "tokens", "cost_usd",
        "under_way"}`` (``cost_usd`` None once a call's price was unknown); None without one.
        """
        if self._budget_ledger is None:
            return None
        state = self._budget_ledger.read()
        usage = state["usage"]
        return {
            "budget": dict(state["budget"]),
            "calls": usage["calls"],
            "tokens": usage["tokens"],
            "cost_usd": usage["cost_usd"],
            "under_way": len(state["reserved"]),
        }

    def log_tail(self, mission_id: str, lines: int = 40) -> str:
        """The last ``lines`` lines of a mission's log (stdout/stderr of its worker)."""
        path = self.store.log_file(mission_id)
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 64 * 1024))
                data = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return "\n".join(data.splitlines()[-lines:])


def open_ledger(backend: Backend, budget: Budget | None) -> SharedLedger | None:
    """A new ledger for an orchestrator's budget where the backend's workers reach it, with
    an id of its own: a reattaching orchestrator starts a new one (see :meth:`budget_used`)."""
    if budget is None:
        return None
    return backend.shared_ledger(f"budget_{os.urandom(6).hex()}", new_ledger(budget))


def live_spans(tracer_provider: Any, store: MissionStore) -> LiveSpans | None:
    """The live span export of ``MissionOrchestrator(tracer_provider=...)`` (None: none, and
    OpenTelemetry is not even imported)."""
    if tracer_provider is None:
        return None
    try:
        from .otel_live import LiveSpans
    except ImportError as exc:  # pragma: no cover - the [otel] extra is missing
        raise ImportError(
            "tracer_provider= needs OpenTelemetry: pip install 'mission-widgets[otel]'"
        ) from exc
    return LiveSpans(tracer_provider, store)
