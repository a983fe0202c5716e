"""The worker process: runs one mission outside the kernel and reports into the store.

Started as ``python -m mission_widgets.worker STORE_DIR MISSION_ID`` in its own session
(process group). It writes every event to the SQLite store as it happens, beats a heartbeat
from its own thread, checkpoints after every step, and stops overrunning step attempts with
SIGALRM. stdout/stderr go to the mission's log file (set up by the parent). Imports no
pandas, ipywidgets or IPython: its start-up is the floor of every mission's latency.

``python -m mission_widgets.worker --stream FD PAYLOAD_FILE [HEARTBEAT_SECS]`` is the same
worker for a parent that has no store on this disk (the Dask backend's task): each event
record and heartbeat goes to file descriptor FD as one JSON line instead, and the worker
exits as soon as that pipe breaks (its parent is gone). It never imports dask.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable

from ..core.errors import describe_error
from ..core.mission import Mission
from ..core.models import register_provider
from ..core.timeouts import enable_signal_timeouts
from .payload import read_payload
from .store import MissionStore

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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

    Every sink (store, stream to a Dask task, Dask topic) sends exactly this, so a mission
    reads the same in the store whichever backend ran it.
    """
    final = final_state(mission) if event["event"] == "mission_done" else None
    return {"event": event, "summary": mission_summary(mission), "final": final}


class StoreSink:
    """Event sink that writes each event, the mission's summary and, at the end, its state."""

    def __init__(self, store: MissionStore, mission: Mission) -> None:
        self.store = store
        self.mission = mission

    def __call__(self, event: dict[str, Any]) -> None:
        record = event_record(self.mission, event)
        self.store.append_event(record["event"], record["summary"], record["final"])


class Heartbeat:
    """A daemon thread that stamps ``last_heartbeat`` every ``interval`` seconds.

    ``beat`` replaces the stamp (``store`` and ``mission_id`` may then be None): the stream
    worker and the Dask backend beat into a pipe or a Dask topic instead of the store.
    """

    def __init__(
        self,
        store: MissionStore | None,
        mission_id: str | None,
        interval: float,
        *,
        beat: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.mission_id, self.interval = store, mission_id, interval
        self._beat_once = beat if beat is not None else self._stamp
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mission-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _stamp(self) -> None:
        self.store.heartbeat(self.mission_id)

    def _beat(self) -> None:
        while True:
            try:
                self._beat_once()
            except Exception as exc:  # keep beating; say why once per failure
                print(f"[mission_widgets] heartbeat failed: {describe_error(exc)}", file=sys.stderr)
            if self._stop.wait(self.interval):
                return


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


def run_worker(store_dir: str, mission_id: str, heartbeat_secs: float) -> int:
    store = MissionStore(store_dir, create=False, role="worker")
    heartbeat = Heartbeat(store, mission_id, heartbeat_secs).start()
    try:
        payload = read_payload(store.path_of("mission", mission_id))
    except Exception as exc:
        store.finish_if_unfinished(mission_id, "failed", describe_error(exc))
        print(f"[mission_widgets] {describe_error(exc)}", file=sys.stderr)
        return 2
    try:
        mission = payload["mission"]
        error = run_payload(
            payload,
            StoreSink(store, mission),
            checkpoint_path=store.path_of("checkpoint", mission_id),
        )
    finally:
        heartbeat.stop()
    if error is not None:
        store.finish_if_unfinished(mission_id, "failed", error)
        print(f"[mission_widgets] mission {mission_id} failed: {error}", file=sys.stderr)
        return 1
    return 0


class LineWriter:
    """Writes JSON records, one a line, to a pipe; exits the process once the pipe breaks.

    A broken pipe means the parent (the Dask task) is gone: nobody would see the mission's
    events any more, so the mission must not go on running unseen.
    """

    def __init__(self, fd: int) -> None:
        self._out = os.fdopen(fd, "w", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=repr) + "\n"
        with self._lock:
            try:
                self._out.write(line)
                self._out.flush()
            except (OSError, ValueError):
                os._exit(3)


def run_stream(fd: int, payload_file: str, heartbeat_secs: float) -> int:
    """The ``--stream`` worker: event records and heartbeats as JSON lines to ``fd``."""
    write = LineWriter(fd)
    heartbeat = Heartbeat(
        None, None, heartbeat_secs, beat=lambda: write({"kind": "heartbeat"})
    ).start()
    try:
        payload = read_payload(payload_file)
    except Exception as exc:
        print(f"[mission_widgets] {describe_error(exc)}", file=sys.stderr)
        return 2
    mission: Mission = payload["mission"]

    def sink(event: dict[str, Any]) -> None:
        write({"kind": "event", **event_record(mission, event)})

    try:
        error = run_payload(payload, sink)
    finally:
        heartbeat.stop()
    if error is not None:
        print(f"[mission_widgets] mission {mission.id} failed: {error}", file=sys.stderr)
        return 1
    return 0


USAGE = (
    "usage: python -m mission_widgets.worker STORE_DIR MISSION_ID [HEARTBEAT_SECS]\n"
    "       python -m mission_widgets.worker --stream FD PAYLOAD_FILE [HEARTBEAT_SECS]"
)


def main(argv: list[str] | None = None) -> None:
    # argv is written by the runtime, not typed by people: no argparse (it costs start-up).
    args = sys.argv[1:] if argv is None else argv
    stream = bool(args) and args[0] == "--stream"
    if stream:
        args = args[1:]
    if len(args) not in (2, 3):
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    heartbeat_secs = float(args[2]) if len(args) == 3 else 2.0
    label = os.path.splitext(os.path.basename(args[1]))[0] if stream else args[1]
    print(
        f"[mission_widgets] worker pid {os.getpid()} running {label} "
        f"at {time.strftime('%Y-%m-%d %H:%M:%S')}",
        flush=True,
    )
    if stream:
        code = run_stream(int(args[0]), args[1], heartbeat_secs)
    else:
        code = run_worker(args[0], args[1], heartbeat_secs)
    sys.stdout.flush()
    sys.stderr.flush()
    # A timed-out attempt may still sit in a C call on a helper thread: do not wait for it.
    os._exit(code)
