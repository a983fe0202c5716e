"""The thread backend: each mission runs on a daemon thread of this process (the kernel).

Quick to start and able to run missions that cannot be pickled, but a thread cannot be
killed: cancel is cooperative (no new step or retry starts) and timeouts stop pure-Python
code only (see core.timeouts). Every mission that starts here ends in the store exactly
once with its real cause, also when its executor raises a ``BaseException`` or the final
event cannot be written with its state.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ..core.errors import describe_error
from .backend import Backend, CannotStopHere, Row
from .decisions import StoreDecisionSource
from .payload import MissionNotPicklableError, build_payload, dumps_payload, write_payload
from .processes import find_process, process_start_time
from .worker import StoreSink, end_row

if TYPE_CHECKING:
    from ..core.mission import Mission


class _Run:
    """A mission running on a thread of this process."""

    def __init__(self, mission: Mission, thread: threading.Thread) -> None:
        self.mission = mission
        self.thread = thread


#: Every mission running on a thread of this process, whichever ThreadBackend started it:
#: two orchestrators of one kernel (or an observer) see each other's threads.
_RUNS: dict[str, _Run] = {}
#: Why a thread of this process ended abnormally, until the orchestrator releases the mission.
_ENDED_WITH: dict[str, str] = {}
_RUNS_LOCK = threading.Lock()


def _run_of(mission_id: str) -> _Run | None:
    with _RUNS_LOCK:
        return _RUNS.get(mission_id)


class ThreadBackend(Backend):
    """Runs each mission on a daemon thread of this process."""

    name = "thread"
    runs_in_kernel = True

    def check(self, mission: Mission) -> None:
        # Saved when it can be, so a queue left by a kernel that exits can be adopted by the
        # next one; a mission that cannot be pickled still runs here (that is what threads
        # are for), and is ended with that reason if its kernel exits before it starts.
        try:
            data = dumps_payload(
                build_payload(mission, str(self.store.checkpoint_file(mission.id)))
            )
        except MissionNotPicklableError:
            return
        write_payload(self.store.mission_file(mission.id), data)

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        sink = StoreSink(self.store, mission)
        mission.decision_source = StoreDecisionSource(self.store, mission)
        thread = threading.Thread(
            target=self._run, args=(mission, sink), name=f"mission-{mission.id}", daemon=True
        )
        # Known here before the row names this process, so nobody judges it dead meanwhile.
        with _RUNS_LOCK:
            _RUNS[mission.id] = _Run(mission, thread)
        pid = os.getpid()
        try:
            self.store.set_process(mission.id, pid, process_start_time(pid))
        except BaseException:
            with _RUNS_LOCK:
                del _RUNS[mission.id]
            raise
        mission.add_event_sink(sink)
        thread.start()
        return pid

    def _run(self, mission: Mission, sink: StoreSink) -> None:
        error: str | None = None
        try:
            mission.run()
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt too: a thread has nobody to pass them to; the
            # mission ends with what they are.
            error = describe_error(exc)
        try:
            # Also after a clean run: a sink that failed on mission_done (a result that
            # cannot be serialised, a full store) must not leave the row running for ever.
            end_row(self.store, mission, error)
        except Exception as exc:  # the store cannot take it: reconcile reports the thread gone
            error = f"{error or 'the end'} could not be recorded: {describe_error(exc)}"
        finally:
            mission.remove_event_sink(sink)
            self.store.close()
            with _RUNS_LOCK:
                run = _RUNS.pop(mission.id, None)
                if error is not None and run is not None:
                    _ENDED_WITH[mission.id] = error
            self.on_exit(mission.id)

    def release(self, mission_id: str) -> None:
        with _RUNS_LOCK:
            _ENDED_WITH.pop(mission_id, None)

    def _in_this_process(self, row: Row) -> bool:
        pid = os.getpid()
        if row.get("pid") != pid:
            return False
        started = row.get("pid_started")
        return started is None or find_process(pid, started) is not None

    def is_alive(self, row: Row) -> bool | None:
        if _run_of(row["id"]) is not None:
            return True  # its thread takes it out of _RUNS as it ends
        if self._in_this_process(row):
            return False  # its thread ran here and is gone
        # Another kernel's thread: it can run only while that kernel does.
        return find_process(row.get("pid"), row.get("pid_started")) is not None

    def can_cancel_here(self, row: Row) -> bool:
        return _run_of(row["id"]) is not None

    def stop(self, row: Row, grace: float) -> None:
        run = _run_of(row["id"])
        if run is None:
            if self._in_this_process(row):
                return  # its thread has already ended
            raise CannotStopHere(self._not_here(row))
        run.mission.request_cancel()
        if run.thread.ident is not None:  # not between launch()'s bookkeeping and its start
            run.thread.join(grace)

    def exit_reason(self, row: Row) -> str:
        if _run_of(row["id"]) is not None or self._in_this_process(row):
            with _RUNS_LOCK:
                error = _ENDED_WITH.get(row["id"])
            cause = f": {error}" if error else ""
            return (
                f"the thread that ran mission {row['id']} in this process (pid {os.getpid()}) "
                f"ended without a final event{cause}"
            )
        if find_process(row.get("pid"), row.get("pid_started")) is not None:
            return (
                f"the thread that ran mission {row['id']} in process {row.get('pid')} ended "
                "without a final event"
            )
        return f"the kernel (pid {row.get('pid')}) that ran this mission in a thread has exited"
