"""The worker process: runs one mission outside the kernel and reports into the store.

Started as ``python -m mission_widgets.worker STORE_DIR MISSION_ID`` in its own session
(process group). It writes every event to the SQLite store as it happens, beats a heartbeat
from its own thread, checkpoints after every step, and stops overrunning step attempts with
SIGALRM. stdout/stderr go to the mission's log file (set up by the parent). Imports no
pandas, ipywidgets or IPython: its start-up is the floor of every mission's latency.

Every mission it starts ends in the store exactly once with its real cause; when the store
cannot take the end (full, read-only) the worker retries, then writes the end to its log as
one line (``[mission_widgets] END {json}``, read back by :func:`read_end_from_log`) and exits
with :data:`END_IN_LOG_EXIT_CODE`. ``run_payload``, ``event_record`` and ``Heartbeat`` are
shared with the Dask backend's mission process (runtime/dask_child.py).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable

from ..core.checks import bound_text
from ..core.cost import apply_prices
from ..core.errors import MissionError, describe_error
from ..core.mission import Mission
from ..core.models import register_provider
from ..core.status import MissionStatus
from ..core.timeouts import enable_signal_timeouts
from .decisions import StoreDecisionSource
from .payload import read_payload, refusal
from .store import MissionStore

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def say(text: str) -> None:
    """One line to the log (stderr); a log that cannot take it (a full disk) is not an error
    of the mission."""
    try:
        print(f"[mission_widgets] {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def mission_summary(mission: Mission) -> dict[str, Any]:
    """The summary columns of the store row, from the live mission (O(1): kept by core)."""
    summary = mission.live_summary()
    summary.pop("waiting_on")  # not a store column (yet)
    return summary


def final_state(mission: Mission) -> dict[str, Any]:
    state = mission.to_dict(include_executors=False)
    state["audit_log"] = []  # the events table has it
    return state


def event_record(mission: Mission, event: dict[str, Any]) -> dict[str, Any]:
    """What a sink reports for one event: the event, the summary row, the final state at the end.

    Every sink (store, pipe to a Dask task, Dask topic) sends exactly this, so a mission
    reads the same in the store whichever backend ran it.
    """
    final = final_state(mission) if event["event"] == "mission_done" else None
    return {"event": event, "summary": mission_summary(mission), "final": final}


#: Custom events (``emit_event``) a mission may store; past it one note says how it ended.
CUSTOM_EVENTS_CAP = 10_000
CUSTOM_EVENTS_CAP_ENV = "MISSION_WIDGETS_CUSTOM_EVENTS_CAP"
#: Events of the engine itself: never capped (a mission's story needs every one of them).
ENGINE_EVENTS = frozenset(
    {
        "mission_start",
        "planner_start",
        "planner_done",
        "mission_planned",
        "step_start",
        "retry_start",
        "step_failure",
        "step_failed",
        "step_success",
        "retry_success",
        "step_done",
        "step_skipped",
        "mission_stall",
        "mission_done",
        "mission_waiting",
        "mission_resumed",
        "mission_explained",
        "mission_recovered",
        "decision_refused",
        "progress",
        "heartbeat",
        "model_call",
    }
)


def custom_events_cap() -> int:
    value = os.environ.get(CUSTOM_EVENTS_CAP_ENV)
    return int(value) if value and value.isdigit() else CUSTOM_EVENTS_CAP


class StoreSink:
    """Event sink that writes each event, the mission's summary and, at the end, its state.

    No event is dropped: one the store cannot take (its write lock held longer than the
    worker's wait, a full disk) is kept, in order, and written before the next one; what is
    still unwritten when the mission ends is written by :meth:`flush` (retried with the
    end), or, failing that, carried in the end the worker writes to its log.
    """

    def __init__(self, store: MissionStore, mission: Mission) -> None:
        self.store = store
        self.mission = mission
        #: Records not written yet, oldest first.
        self.unwritten: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # parallel steps emit from several threads
        self._said = False
        self._custom = 0
        self._custom_cap = custom_events_cap()

    def _over_cap(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """What to store for ``event``: itself, the note that replaces the first custom event
        over the cap, or None (later ones: the note said so)."""
        name = str(event.get("event"))
        if name in ENGINE_EVENTS or name.startswith("escalation_"):
            return event
        self._custom += 1
        if self._custom <= self._custom_cap:
            return event
        if self._custom > self._custom_cap + 1:
            return None
        from ..core.events import make_event

        return make_event(
            "custom_events_capped",
            self.mission.id,
            message=f"mission {self.mission.id} emitted more than {self._custom_cap:,} custom "
            f"events; from {name!r} on, its custom events are not stored",
        )

    def __call__(self, event: dict[str, Any]) -> None:
        kept = self._over_cap(event)
        if kept is None:
            return
        record = event_record(self.mission, kept)
        with self._lock:
            self.unwritten.append(record)
            try:
                self._write_unwritten()
            except Exception as exc:  # kept: written with the next event or at the end
                if not self._said:
                    self._said = True
                    say(
                        f"the store cannot take events of mission {self.mission.id} now "
                        f"({describe_error(exc)}); keeping them to write later"
                    )

    def flush(self) -> None:
        """Write what is still unwritten; raises the store's error when it cannot."""
        with self._lock:
            self._write_unwritten()

    def _write_unwritten(self) -> None:
        while self.unwritten:
            record = self.unwritten[0]
            self.store.append_event(record["event"], record["summary"], record["final"])
            self.unwritten.pop(0)
        if self._said:
            self._said = False
            say(f"the store took the kept events of mission {self.mission.id}")


def end_row(store: MissionStore, mission: Mission, error: str | None) -> dict[str, Any] | None:
    """Give the mission's row its end if no event gave it one; return the event written.

    ``error`` is what stopped the run (None when ``mission.run()`` returned). A mission that
    finished keeps its own status and error, whatever kept its final event out of the store
    or was raised after it (a log or checkpoint that a full disk refused).
    """
    if mission.is_finished:  # what went wrong after its end does not change it
        status, error = str(mission.status), mission.error
    else:
        status = MissionStatus.FAILED.value
        error = error or f"mission {mission.id} stopped in status {mission.status!s}"
    counts = {k: v for k, v in mission_summary(mission).items() if k != "status"}
    return store.finish_if_unfinished(mission.id, status, error, **counts)


class Heartbeat:
    """A daemon thread that stamps ``last_heartbeat`` every ``interval`` seconds.

    ``beat`` replaces the stamp (``store`` and ``mission_id`` may then be None): Dask's
    mission process and task beat into a pipe or a Dask topic instead of the store.
    ``beat_at_start=False``: the first beat comes after one interval, not at once.
    """

    def __init__(
        self,
        store: MissionStore | None,
        mission_id: str | None,
        interval: float,
        *,
        beat: Callable[[], None] | None = None,
        beat_at_start: bool = True,
    ) -> None:
        self.store, self.mission_id, self.interval = store, mission_id, interval
        self._beat_at_start = beat_at_start
        self._beat_once = beat if beat is not None else self._stamp
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mission-heartbeat", daemon=True)
        #: Called (once, from the heartbeat thread) when the store says the mission's row
        #: has ended although this worker did not end it: another process recorded a cancel.
        self.on_ended: Callable[[], None] | None = None
        #: The worker's log, kept under log_cap() bytes by each beat (its tail is kept).
        self.log_path: str | None = None

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _stamp(self) -> None:
        assert self.store is not None and self.mission_id is not None
        if not self.store.heartbeat(self.mission_id) and self.on_ended is not None:
            ended, self.on_ended = self.on_ended, None
            ended()

    def _beat(self) -> None:
        if not self._beat_at_start and self._stop.wait(self.interval):
            return
        while True:
            try:
                self._beat_once()
            except Exception as exc:  # keep beating; say why once per failure
                say(f"heartbeat failed: {describe_error(exc)}")
            if self.log_path is not None:
                try:
                    cap_log(self.log_path, log_cap())
                except OSError as exc:
                    say(f"the log could not be capped: {describe_error(exc)}")
            if self._stop.wait(self.interval):
                return


#: Most bytes a mission's log keeps: past it the start is dropped, the tail kept.
LOG_CAP_BYTES = 10 << 20
LOG_CAP_ENV = "MISSION_WIDGETS_LOG_CAP_BYTES"


def log_cap() -> int:
    value = os.environ.get(LOG_CAP_ENV)
    return int(value) if value and value.isdigit() and int(value) > 0 else LOG_CAP_BYTES


def cap_log(path: str, cap: int) -> bool:
    """Keep the log at ``path`` under ``cap`` bytes: when over, keep its last half-cap of
    bytes after one line saying how much was dropped (the worker writes with O_APPEND, so
    it goes on at the new end). True when it was cut."""
    size = os.stat(path, follow_symlinks=False).st_size
    if size <= cap:
        return False
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    try:
        keep = cap // 2
        os.lseek(fd, size - keep, os.SEEK_SET)
        chunks, left = [], keep
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        note = (
            f"[mission_widgets] this log passed {cap:,} bytes: its first {size - keep:,} "
            "bytes were dropped, the tail is kept\n"
        ).encode()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, note + b"".join(chunks))
    finally:
        os.close(fd)
    return True


#: Seconds a worker whose mission was ended by another process gives the mission to stop
#: by itself before it takes its process group down.
ENDED_ELSEWHERE_GRACE_SECS = 3.0


def stop_when_ended_elsewhere(mission: Mission) -> Callable[[], None]:
    """What a worker does when its row ended without it (a cancel recorded by a process that
    could not stop it, e.g. a kernel killed between recording and signalling): the mission
    is asked to stop; after a grace period the worker's process group is killed."""

    def ended() -> None:
        if mission.is_finished:
            return  # its own end: nothing to stop
        say(f"mission {mission.id} was ended by another process; stopping")
        mission.request_cancel()
        time.sleep(ENDED_ELSEWHERE_GRACE_SECS)  # on the heartbeat thread: beats have ended
        import signal

        os.killpg(os.getpgrp(), signal.SIGKILL)

    return ended


def run_payload(
    payload: dict[str, Any],
    sink: Callable[[dict[str, Any]], None],
    *,
    checkpoint_path: str | None = None,
    signal_timeouts: bool = True,
) -> str | None:
    """Run a loaded payload's mission with ``sink`` attached; shared by every worker kind.

    Returns None when the mission ran (whatever its outcome: that is in its events), or the
    description of the problem that kept it from starting (preflight: no model, no steps).
    ``signal_timeouts`` lets main-thread step attempts be stopped with SIGALRM.
    """
    for name, factory in payload.get("providers", {}).items():
        register_provider(name, factory, replace=True)
    apply_prices(payload.get("prices", {}))
    mission: Mission = payload["mission"]
    mission.checkpoint_path = checkpoint_path
    mission.add_event_sink(sink)
    if signal_timeouts:
        enable_signal_timeouts()
    try:
        mission.run()
    except Exception as exc:  # preflight problems: the caller records them as the mission's end
        return describe_error(exc)
    finally:
        mission.remove_event_sink(sink)
    return None


#: The worker's exit code when the store could not take the mission's end: it is in the log.
END_IN_LOG_EXIT_CODE = 75
END_MARK = "[mission_widgets] END "
END_RETRY_ENV = "MISSION_WIDGETS_END_RETRY_SECS"


def run_worker(
    store_dir: str,
    mission_id: str,
    heartbeat_secs: float,
    on_end_stored: Callable[[], None] | None = None,
) -> int:
    """Run the mission; ``on_end_stored()`` is called once its end is in the store (a warm
    worker tells its fork server, so the kernel need not wait for this process to exit)."""
    store = MissionStore(store_dir, create=False, role="worker")
    # The first beat waits an interval: the launcher stamped the heartbeat when it recorded
    # the process, and a beat now would take the write lock from the mission's first events.
    heartbeat = Heartbeat(store, mission_id, heartbeat_secs, beat_at_start=False).start()
    try:
        payload = read_payload(store.path_of("mission", mission_id))
    except Exception as exc:
        heartbeat.stop()
        problem = describe_error(exc)
        row = store.row(mission_id) if isinstance(exc, MissionError) else None
        if row is not None:  # named with the release that made it, if another
            problem = refusal(problem, row["made_by"])
        say(problem)
        failure: dict[str, Any] = {"status": MissionStatus.FAILED.value, "error": problem}
        stored = _ensure_end(
            store, mission_id, failure, lambda: store.finish_if_unfinished(mission_id, **failure)
        )
        if not stored:
            return END_IN_LOG_EXIT_CODE
        _tell_end_stored(on_end_stored)
        return 2
    mission: Mission = payload["mission"]
    mission.decision_source = StoreDecisionSource(store, mission)
    heartbeat.on_ended = stop_when_ended_elsewhere(mission)
    heartbeat.log_path = store.path_of("log", mission_id)
    sink = StoreSink(store, mission)
    try:
        error = run_payload(
            payload,
            sink,
            checkpoint_path=store.path_of("checkpoint", mission_id),
        )
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt too: the mission ends with what they are, not as a
        # worker that died without a word.
        error = describe_error(exc)
    finally:
        heartbeat.stop()
    if error is not None:
        say(f"mission {mission_id} failed: {bound_text(error)}")
    try:
        cap_log(store.path_of("log", mission_id), log_cap())  # what it printed since a beat
    except OSError:
        pass
    finished = mission.is_finished
    end: dict[str, Any] = {
        **mission_summary(mission),
        "status": str(mission.status) if finished else MissionStatus.FAILED.value,
        "error": mission.error if finished else error,
    }
    if not _ensure_end(store, mission_id, end, lambda: end_row(store, mission, error), sink):
        return END_IN_LOG_EXIT_CODE
    _tell_end_stored(on_end_stored)
    return 0 if error is None else 1


def _tell_end_stored(on_end_stored: Callable[[], None] | None) -> None:
    if on_end_stored is None:
        return
    try:
        on_end_stored()
    except OSError:  # its fork server is gone (it retired): the kernel watches the exit
        pass


def _ensure_end(
    store: MissionStore,
    mission_id: str,
    end: dict[str, Any],
    write_end: Callable[[], object],
    sink: StoreSink | None = None,
) -> bool:
    """Make sure the store has the mission's events still kept by ``sink`` and its end
    (``write_end()`` writes it if no event did).

    A store that cannot take them (full, read-only, locked) is tried again for
    ``$MISSION_WIDGETS_END_RETRY_SECS`` (default 30 s: space freed, a lock released); then
    the end goes to the log as one line that :func:`read_end_from_log` reads, carrying the
    events the store never took (``unwritten_events``), and the result is False.
    """
    deadline = time.monotonic() + float(os.environ.get(END_RETRY_ENV, "30"))
    said = False
    while True:
        try:
            if sink is not None:
                sink.flush()
            row = store.row(mission_id)
            if row is None or row["finished_at"] is None:
                write_end()
            return True
        except Exception as exc:
            problem = describe_error(exc)
        if time.monotonic() >= deadline:
            break
        if not said:
            say(f"the store cannot take the end of mission {mission_id} ({problem}); trying again")
            said = True
        time.sleep(0.5)
    end = {**end, "store_error": problem, "timestamp": time.time()}
    if sink is not None and sink.unwritten:
        lost = [record["event"] for record in sink.unwritten]
        end["unwritten_events"] = lost
        end["error"] = (
            f"{end.get('error') or ''}{'; ' if end.get('error') else ''}{len(lost)} event(s) "
            "the store never took are in the worker's log (unwritten_events)"
        )
    say("END " + json.dumps(end, default=str))
    return False


def read_end_from_log(store: MissionStore, mission_id: str) -> dict[str, Any] | None:
    """The end the worker of ``mission_id`` wrote to its log because the store could not take
    it: ``{"status", "error", "timestamp", "store_error", ...}``, or None (no such line)."""
    try:
        with open(store.path_of("log", mission_id), "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 65536))
            tail = log.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if line.startswith(END_MARK):
            try:
                end = json.loads(line[len(END_MARK) :])
            except ValueError:
                return None
            return end if isinstance(end, dict) and "status" in end else None
    return None


USAGE = "usage: python -m mission_widgets.worker STORE_DIR MISSION_ID [HEARTBEAT_SECS]"


def run_main(argv: list[str] | None, usage: str, run: Callable[[str, str, float], int]) -> None:
    """Entry point shared by this worker and the Dask mission process (runtime/dask_child.py):
    ``A B [HEARTBEAT_SECS]`` -> ``run(A, B, heartbeat_secs)``, then exit with its code."""
    # argv is written by the runtime, not typed by people: no argparse (it costs start-up).
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(usage, file=sys.stderr)
        raise SystemExit(2)
    heartbeat_secs = float(args[2]) if len(args) == 3 else 2.0
    print(
        f"[mission_widgets] worker pid {os.getpid()} running {args[1]} "
        f"at {time.strftime('%Y-%m-%d %H:%M:%S')}",
        flush=True,
    )
    code = run(args[0], args[1], heartbeat_secs)
    for stream_out in (sys.stdout, sys.stderr):
        try:
            stream_out.flush()
        except (OSError, ValueError):  # a full disk: the exit code still tells
            pass
    # A timed-out attempt may still sit in a C call on a helper thread: do not wait for it.
    os._exit(code)


def main(argv: list[str] | None = None, on_end_stored: Callable[[], None] | None = None) -> None:
    run_main(
        argv,
        USAGE,
        lambda root, mission_id, beat: run_worker(root, mission_id, beat, on_end_stored),
    )
