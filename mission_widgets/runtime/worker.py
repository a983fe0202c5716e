"""The worker process: runs one mission outside the kernel and reports into the store.

Started as ``python -m mission_widgets.worker STORE_DIR MISSION_ID`` in its own session
(process group). It writes every event to the SQLite store as it happens, beats a heartbeat
from its own thread, checkpoints after every step, and stops overrunning step attempts with
SIGALRM. stdout/stderr go to the mission's log file (set up by the parent). Imports no
pandas, ipywidgets or IPython: its start-up is the floor of every mission's latency.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from ..core.errors import describe_error
from ..core.mission import Mission
from ..core.models import register_provider
from ..core.timeouts import enable_signal_timeouts
from .payload import read_payload
from .store import MissionStore


def mission_summary(mission: Mission) -> dict[str, Any]:
    """The summary columns of the store row, from the live mission."""
    steps = mission.steps or []
    return {
        "status": mission.status,
        "n_steps": len(steps),
        "n_done": sum(1 for s in steps if s.status == "done"),
        "n_failed": sum(1 for s in steps if s.status == "failed"),
        "progress": mission.progress,
    }


def final_state(mission: Mission) -> dict[str, Any]:
    state = mission.to_dict(include_executors=False)
    state["audit_log"] = []  # the events table has it
    return state


class StoreSink:
    """Event sink that writes each event, the mission's summary and, at the end, its state."""

    def __init__(self, store: MissionStore, mission: Mission) -> None:
        self.store = store
        self.mission = mission

    def __call__(self, event: dict[str, Any]) -> None:
        final = final_state(self.mission) if event["event"] == "mission_done" else None
        self.store.append_event(event, mission_summary(self.mission), final)


class Heartbeat:
    """A daemon thread that stamps ``last_heartbeat`` every ``interval`` seconds."""

    def __init__(self, store: MissionStore, mission_id: str, interval: float) -> None:
        self.store, self.mission_id, self.interval = store, mission_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mission-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while True:
            try:
                self.store.heartbeat(self.mission_id)
            except Exception as exc:  # keep beating; say why once per failure
                print(f"[mission_widgets] heartbeat failed: {describe_error(exc)}", file=sys.stderr)
            if self._stop.wait(self.interval):
                return


def run_worker(store_dir: str, mission_id: str, heartbeat_secs: float) -> int:
    store = MissionStore(store_dir, create=False)
    heartbeat = Heartbeat(store, mission_id, heartbeat_secs).start()
    try:
        payload = read_payload(store.mission_file(mission_id))
    except Exception as exc:
        store.finish_if_unfinished(mission_id, "failed", describe_error(exc))
        print(f"[mission_widgets] {describe_error(exc)}", file=sys.stderr)
        return 2
    for name, factory in payload.get("providers", {}).items():
        register_provider(name, factory, replace=True)
    mission: Mission = payload["mission"]
    mission.checkpoint_path = str(store.checkpoint_file(mission_id))
    mission.add_event_sink(StoreSink(store, mission))
    enable_signal_timeouts()
    try:
        mission.run()
    except Exception as exc:  # preflight problems: record them as the mission's end
        store.finish_if_unfinished(mission_id, "failed", describe_error(exc))
        print(
            f"[mission_widgets] mission {mission_id} failed: {describe_error(exc)}", file=sys.stderr
        )
        return 1
    finally:
        heartbeat.stop()
    return 0


USAGE = "usage: python -m mission_widgets.worker STORE_DIR MISSION_ID [HEARTBEAT_SECS]"


def main(argv: list[str] | None = None) -> None:
    # argv is written by the runtime, not typed by people: no argparse (it costs start-up).
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        print(USAGE, file=sys.stderr)
        raise SystemExit(2)
    store_dir, mission_id = args[0], args[1]
    heartbeat_secs = float(args[2]) if len(args) == 3 else 2.0
    print(
        f"[mission_widgets] worker pid {os.getpid()} running {mission_id} "
        f"at {time.strftime('%Y-%m-%d %H:%M:%S')}",
        flush=True,
    )
    code = run_worker(store_dir, mission_id, heartbeat_secs)
    sys.stdout.flush()
    sys.stderr.flush()
    # A timed-out attempt may still sit in a C call on a helper thread: do not wait for it.
    os._exit(code)
