"""The mission process a Dask task starts for ``isolation="process"``.

``python -m mission_widgets.runtime.dask_child FD PAYLOAD_FILE [HEARTBEAT_SECS]`` runs one
mission with the subprocess worker's code (:func:`.worker.run_payload`), for a parent that
has no store on this disk: each event record and heartbeat goes to file descriptor FD as
one JSON line, and when the mission cannot end by itself (a ``BaseException`` from an
executor, a preflight problem) an ``{"kind": "end", "status", "error"}`` line says why, so
the parent reports the real cause. Requests for a waiting mission (decisions,
explanations) arrive as JSON lines on stdin. The process exits as soon as its pipe breaks
(its parent is gone: nobody would see the mission's events any more). It never imports
dask, and, like the worker, nothing heavy (its start-up is the floor of every mission's
latency).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading

from ..core.errors import describe_error
from .decisions import DecisionSource
from .payload import read_payload
from .worker import Heartbeat, event_record, mission_summary, run_main, run_payload

# typing costs start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from ..core.mission import Mission

#: Exit code when the parent's pipe broke.
ORPHANED_EXIT_CODE = 3


def safe_record(mission: Mission, event: dict[str, Any]) -> dict[str, Any]:
    """:func:`.worker.event_record`, or, when the final state cannot be serialised (a result
    that cannot be pickled), the record without it: the end still travels, the log says why."""
    try:
        return event_record(mission, event)
    except Exception as exc:
        print(
            f"[mission_widgets] final state of mission {mission.id} not sent: "
            f"{describe_error(exc)}",
            file=sys.stderr,
        )
        return {"event": event, "summary": mission_summary(mission), "final": None}


class ForwardedRequests:
    """The requests (decision, explanation) the kernel forwarded to this mission, in order.

    ``take()`` returns and forgets them, as the store's ``take_requests`` does, so the
    mission's :class:`.decisions.DecisionSource` reads them the same way.
    """

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def put(self, kind: str, payload: Any) -> None:
        self._requests.put({"kind": kind, "payload": payload})

    def take(self) -> list[dict[str, Any]]:
        taken = []
        while True:
            try:
                taken.append(self._requests.get_nowait())
            except queue.Empty:
                return taken

    def read_lines(self, stream: IO[str]) -> None:
        """Put each JSON line of ``stream`` (the parent's requests) until it ends."""
        for line in stream:
            try:
                request = json.loads(line)
                self.put(str(request["kind"]), request.get("payload"))
            except (ValueError, KeyError, TypeError):
                print(f"[mission_widgets] unreadable request: {line!r}", file=sys.stderr)


class LineWriter:
    """Writes JSON records, one a line, to a pipe; exits the process once the pipe breaks."""

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
                os._exit(ORPHANED_EXIT_CODE)


def run_child(fd: int, payload_file: str, heartbeat_secs: float) -> int:
    """Run the mission of ``payload_file``, reporting to ``fd``; returns the exit code."""
    write = LineWriter(fd)
    heartbeat = Heartbeat(
        None, None, heartbeat_secs, beat=lambda: write({"kind": "heartbeat"})
    ).start()
    try:
        payload = read_payload(payload_file)
    except Exception as exc:
        heartbeat.stop()
        write({"kind": "end", "status": "failed", "error": describe_error(exc)})
        return 2
    mission: Mission = payload["mission"]
    requests = ForwardedRequests()
    mission.decision_source = DecisionSource(mission, requests.take)
    threading.Thread(
        target=requests.read_lines, args=(sys.stdin,), name="mission-requests", daemon=True
    ).start()

    def sink(event: dict[str, Any]) -> None:
        write({"kind": "event", **safe_record(mission, event)})

    try:
        error = run_payload(payload, sink, signal_timeouts=True)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt...: what they are, not a crash
        error = describe_error(exc)
    finally:
        heartbeat.stop()
    if error is not None:
        print(f"[mission_widgets] mission {mission.id} failed: {error}", file=sys.stderr)
        write({"kind": "end", "status": "failed", "error": error})
        return 1
    return 0


USAGE = "usage: python -m mission_widgets.runtime.dask_child FD PAYLOAD_FILE [HEARTBEAT_SECS]"


def main(argv: list[str] | None = None) -> None:
    run_main(argv, USAGE, lambda fd, payload_file, secs: run_child(int(fd), payload_file, secs))


if __name__ == "__main__":
    main()
