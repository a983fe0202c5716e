"""The worker side of the Dask backend: what runs inside a Dask worker process.

:func:`run_mission_on_dask` is the task the kernel submits (see :mod:`.dask_kernel`). It
first *claims* the mission in the scheduler's metadata (one round trip, :mod:`.dask_claim`;
``get_metadata`` + ``set_metadata`` where the scheduler takes no functions): a second
claim means the scheduler re-ran the task because the worker that ran it was lost, and the
mission then ends ``failed`` with that reason instead of silently starting over (unless
``worker_lost_retries`` allows it). It then runs the mission

* ``isolation="process"``: in a child process, :mod:`.dask_child` (the subprocess
  backend's worker code, reporting on a pipe), whose event records and heartbeats
  come back on a pipe and whose output a :class:`_LogPump` forwards in chunks; cancel kills
  its process group; decisions and explanations for a waiting mission go to its stdin;
* ``isolation="thread"``: in the task's own thread; cancel is cooperative plus an
  asynchronous exception in that thread (:mod:`core.timeouts`' mechanism).

Every message goes to the scheduler's event log (``Worker.log_event``) through a
:class:`_Publisher`, in batches, with a per-run uid so the kernel writes each one once and
in order.
The kernel reaches a running mission with ``Client.run`` (:func:`_stop_on_worker`,
:func:`_deliver_on_worker`), through the registry of runs in this worker process.
Nothing here imports dask at module level.
"""

from __future__ import annotations

import codecs
import itertools
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ..core.errors import MissionCancelled, describe_error
from ..core.events import make_event
from ..core.mission import Mission
from ..core.timeouts import async_raise
from . import dask_claim
from .dask_child import ForwardedRequests, safe_record
from .dask_claim import claim_on_scheduler
from .decisions import DecisionSource
from .payload import write_payload
from .processes import describe_exit, kill_process_tree, process_start_time
from .subprocess_backend import worker_environment
from .worker import Heartbeat, run_payload

#: Metadata path (on the scheduler) under which each mission's claim is kept.
CLAIMS = ("mission_widgets", "claims")
#: Whether claims take one step (claim_on_scheduler), until the scheduler refuses it.
_CLAIM_IN_ONE_STEP = True
#: Shortest interval between log chunks a task publishes for one mission.
LOG_FLUSH_SECS = 0.5
LOG_CHUNK_BYTES = 16 * 1024
#: Longest a message waits on the worker for others to travel with (one batch).
BATCH_SECS = 0.05
#: A batch leaves at once when it holds this many messages.
BATCH_MAX = 64


class _Publisher:
    """Sends one run's messages to the scheduler's event log (``Worker.log_event``).

    Gives each event and log chunk a uid (``run:counter``), remembers the latest summary
    and, once sent, the ``mission_done`` message (the task's return value). Nothing is sent
    after ``mission_done`` but output. Messages travel in batches (``{"kind": "batch", "messages":
    [...]}``, one scheduler message and one kernel transaction for many): a batch leaves
    ``BATCH_SECS`` after its first message, when it is full, or with ``mission_done``, so
    a short mission costs one message. Heartbeats go at once, on their own topic.
    """

    def __init__(self, worker: Any, mission_id: str, topic: str, heartbeat_topic: str) -> None:
        self.worker = worker
        self.mission_id = mission_id
        self.topic = topic
        self.heartbeat_topic = heartbeat_topic
        self.run = os.urandom(4).hex()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._outbox: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        #: (status, reason) that a stop request puts on the mission's last event.
        self.override: tuple[str, str] | None = None

    def _uid(self) -> str:
        return f"{self.run}:{next(self._counter)}"

    def _post(self, message: dict[str, Any], *, now: bool = False) -> None:
        """Add a message to the batch (lock held); send the batch if ``now`` or full, or
        have the worker's event loop send it in BATCH_SECS."""
        self._outbox.append(message)
        if now or len(self._outbox) >= BATCH_MAX:
            self._send()
        elif len(self._outbox) == 1:
            loop = self.worker.loop
            loop.add_callback(loop.call_later, BATCH_SECS, self.flush)

    def _send(self) -> None:
        batch, self._outbox = self._outbox, []
        if len(batch) == 1:
            self.worker.log_event(self.topic, batch[0])
        elif batch:
            message = {"kind": "batch", "mission_id": self.mission_id, "messages": batch}
            self.worker.log_event(self.topic, message)

    def flush(self) -> None:
        """Send what waits in the batch now."""
        with self._lock:
            self._send()

    def event(
        self,
        event: dict[str, Any],
        summary: dict[str, Any] | None = None,
        final: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            if self.final is not None:
                return
            done = event.get("event") == "mission_done"
            if done and self.override is not None:
                status, reason = self.override
                event = {
                    **event,
                    "status": status,
                    "error_message": reason,
                    "error_type": "mission_" + status,
                }
                summary = {**summary, "status": status} if summary else None
                final = {**final, "status": status, "error": reason} if final else None
            message = {
                "kind": "event",
                "mission_id": self.mission_id,
                "uid": self._uid(),
                "event": event,
                "summary": summary,
                "final": final,
            }
            if summary:
                self.summary = summary
            if done:
                self.final = message
            self._post(message, now=done)

    def end(self, status: str, error: str | None, **extra: Any) -> None:
        """Publish a ``mission_done`` the mission itself could not send (killed, refused)."""
        summary = dict(self.summary or {})
        if summary:
            summary["status"] = status
        event = make_event(
            "mission_done",
            self.mission_id,
            status=status,
            error_type="mission_" + status,
            error_message=error,
            **extra,
        )
        self.event(event, summary or None)

    def heartbeat(self) -> None:
        self.worker.log_event(
            self.heartbeat_topic, {"kind": "heartbeat", "mission_id": self.mission_id}
        )

    def log(self, text: str) -> None:
        with self._lock:
            message = {
                "kind": "log",
                "mission_id": self.mission_id,
                "uid": self._uid(),
                "text": text,
            }
            self._post(message)


class _Run:
    """One mission running in this worker process (what stop and delivery requests act on)."""

    def __init__(self, mission_id: str, publisher: _Publisher) -> None:
        self.mission_id = mission_id
        self.publisher = publisher
        self.lock = threading.Lock()
        self.stop_request: tuple[str, str] | None = None
        self.grace = 3.0
        self.proc: subprocess.Popen | None = None
        self.proc_started: float | None = None
        self.mission: Mission | None = None
        self.thread_ident: int | None = None
        #: Where requests for the mission go once it runs; until then they wait in ``early``.
        self.deliver_to: Callable[[str, Any], None] | None = None
        self.early: list[tuple[str, Any]] = []

    def deliver(self, kind: str, payload: Any) -> None:
        """Hand a request (decision, explanation) to the running mission."""
        with self.lock:
            target = self.deliver_to
            if target is None:
                self.early.append((kind, payload))
                return
        target(kind, payload)

    def accept_requests(self, target: Callable[[str, Any], None]) -> None:
        with self.lock:
            self.deliver_to = target
            early, self.early = self.early, []
        for kind, payload in early:
            target(kind, payload)

    def attach_process(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.proc = proc
            self.proc_started = process_start_time(proc.pid)
            stop = self.stop_request is not None
        if stop:
            self._kill()

    def attach_thread(self, mission: Mission) -> None:
        with self.lock:
            self.mission = mission
            self.thread_ident = threading.get_ident()
            stop = self.stop_request is not None
        if stop:
            mission.request_cancel()

    def detach_thread(self) -> None:
        with self.lock:
            self.thread_ident = None
        async_raise(threading.get_ident(), None)  # drop an interrupt that came too late

    def stop(self, status: str, reason: str, grace: float) -> None:
        with self.lock:
            if self.stop_request is not None:
                return
            self.stop_request = (status, reason)
            self.publisher.override = (status, reason)
            self.grace = grace
            mission, ident, proc = self.mission, self.thread_ident, self.proc
        if proc is not None:
            self._kill()
        if mission is not None:
            mission.request_cancel()
            if ident is not None:
                async_raise(ident, MissionCancelled)

    def _kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        # Off the worker's event loop: the grace period would block it.
        threading.Thread(
            target=kill_process_tree,
            args=(proc.pid, self.proc_started, self.grace),
            name=f"mission-kill-{self.mission_id}",
            daemon=True,
        ).start()


_ACTIVE: dict[str, _Run] = {}
_TOMBSTONES: dict[str, tuple[str, str, float]] = {}
_ACTIVE_LOCK = threading.Lock()


def stop_on_worker(mission_id: str, grace: float, status: str, reason: str) -> str:
    """Run by ``Client.run`` on a worker's event loop: stop (or pre-empt) a mission there."""
    with _ACTIVE_LOCK:
        run = _ACTIVE.get(mission_id)
        if run is None:
            now = time.time()
            for key, (_, _, when) in list(_TOMBSTONES.items()):
                if now - when > 3600:
                    del _TOMBSTONES[key]
            _TOMBSTONES[mission_id] = (status, reason, now)
            return "not running here"
    run.stop(status, reason, grace)
    return "stopping"


def deliver_on_worker(mission_id: str, kind: str, payload: Any) -> str:
    """Run by ``Client.run`` on a worker's event loop: hand a request to a mission there."""
    with _ACTIVE_LOCK:
        run = _ACTIVE.get(mission_id)
    if run is None:
        return "not running here"
    run.deliver(kind, payload)
    return "delivered"


def _claim(mission_id: str, address: str, retries: int) -> tuple[int, str | None]:
    """Record that this run starts; return (start number, refusal reason or None).

    Tasks only start twice when the scheduler lost the worker that ran them, so a second
    claim is the sign of a lost worker.
    """
    from distributed import get_client

    global _CLAIM_IN_ONE_STEP
    try:
        client = get_client()
        previous = None
        if _CLAIM_IN_ONE_STEP:
            import cloudpickle

            cloudpickle.register_pickle_by_value(dask_claim)  # the scheduler may lack us
            try:
                previous = client.run_on_scheduler(claim_on_scheduler, mission_id, address)
            except ValueError:  # the scheduler refuses functions (distributed.scheduler.pickle)
                _CLAIM_IN_ONE_STEP = False
        if not _CLAIM_IN_ONE_STEP:
            keys = [*CLAIMS, mission_id]
            previous = client.get_metadata(keys, default=None)
            start = 1 + int((previous or {}).get("start", 0))
            client.set_metadata(keys, {"start": start, "worker": address, "at": time.time()})
    except Exception as exc:  # cannot check: run anyway, and say so in the worker log
        print(
            f"[mission_widgets] cannot record the start of {mission_id} on the scheduler "
            f"({describe_error(exc)}); a lost worker would go unnoticed",
            file=sys.stderr,
        )
        return 1, None
    start = 1 + int((previous or {}).get("start", 0))
    if previous and start > retries + 1:
        when = time.strftime("%H:%M:%S", time.localtime(previous.get("at") or 0))
        return start, (
            f"dask worker {previous.get('worker')} was lost while running this mission "
            f"(started there at {when}); the scheduler started it again on {address}, but "
            f"a mission is not re-run after a lost worker (worker_lost_retries={retries})"
        )
    return start, None


def run_mission_on_dask(
    payload: bytes, mission_id: str, info: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any] | None:
    """The Dask task: run one mission on this worker, publishing its events.

    Returns the ``mission_done`` message (the kernel's fallback when a live message went
    missing). ``config`` holds topic, heartbeat_topic, heartbeat_secs, isolation and
    worker_lost_retries.
    """
    from distributed import get_worker

    worker = get_worker()
    publisher = _Publisher(worker, mission_id, config["topic"], config["heartbeat_topic"])
    start, refusal = _claim(mission_id, worker.address, int(config["worker_lost_retries"]))
    if refusal is not None:
        publisher.end("failed", refusal, worker=worker.address)
        return publisher.final
    run = _Run(mission_id, publisher)
    with _ACTIVE_LOCK:
        tombstone = _TOMBSTONES.pop(mission_id, None)
        if tombstone is None:
            _ACTIVE[mission_id] = run
    if tombstone is not None:
        publisher.end(tombstone[0], tombstone[1] + " (before it started)")
        return publisher.final
    start_event = make_event(
        "dask_start",
        mission_id,
        worker=worker.address,
        host=socket.gethostname(),
        pid=os.getpid(),
        key=str(worker.get_current_task()),
        run=publisher.run,
        start=start,
        isolation=config["isolation"],
        **info,
    )
    try:
        if config["isolation"] == "thread":
            _run_in_thread(run, payload, start_event, config)
        else:
            _run_in_child(run, payload, start_event, config, worker.address)
    except BaseException as exc:  # never leave the kernel without an end, nor the worker dead
        publisher.end("failed", f"the dask task failed: {describe_error(exc)}")
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.pop(mission_id, None)
    if publisher.final is None:
        publisher.end(*(run.stop_request or ("failed", "mission ended without a final event")))
    return publisher.final


def _plain(value: Any) -> Any:
    """JSON-clean copy (msgpack-safe for the scheduler; odd objects become their repr)."""
    return json.loads(json.dumps(value, default=repr))


def _run_in_thread(
    run: _Run, payload_bytes: bytes, start_event: dict[str, Any], config: dict[str, Any]
) -> None:
    publisher = run.publisher
    payload = pickle.loads(payload_bytes)
    mission: Mission = payload["mission"]
    requests = ForwardedRequests()
    mission.decision_source = DecisionSource(mission, requests.take)
    run.accept_requests(requests.put)
    publisher.event(start_event)
    beats = itertools.count()

    def beat() -> None:
        if next(beats):  # not the one at start: dask_start stamps the heartbeat on arrival
            publisher.heartbeat()

    heartbeat = Heartbeat(None, None, float(config["heartbeat_secs"]), beat=beat).start()

    def sink(event: dict[str, Any]) -> None:
        record = _plain(safe_record(mission, event))
        publisher.event(record["event"], record["summary"], record["final"])

    error = None
    try:
        try:
            run.attach_thread(mission)
            error = run_payload(payload, sink, signal_timeouts=False)
        finally:
            run.detach_thread()
    except MissionCancelled:  # the interrupt landed outside the engine's own handling
        pass
    except BaseException as exc:  # SystemExit, KeyboardInterrupt...: what they are
        error = describe_error(exc)
    finally:
        heartbeat.stop()
    if error is not None:
        publisher.end("failed", error)


class _LogPump(threading.Thread):
    """Forwards a child's stdout/stderr to the kernel in chunks; keeps the last line."""

    def __init__(self, fd: int, publisher: _Publisher) -> None:
        super().__init__(name=f"mission-log-{publisher.mission_id}", daemon=True)
        self.fd = fd
        self.publisher = publisher
        self.tail = ""

    def run(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        buffer: list[str] = []
        size = 0
        last = time.monotonic()
        try:
            while True:
                data = os.read(self.fd, 65536)
                text = decoder.decode(data, final=not data)
                if text:
                    buffer.append(text)
                    size += len(text)
                    lines = [line for line in text.splitlines() if line.strip()]
                    if lines:
                        self.tail = lines[-1]
                now = time.monotonic()
                if buffer and (not data or size >= LOG_CHUNK_BYTES or now - last >= LOG_FLUSH_SECS):
                    self.publisher.log("".join(buffer))
                    buffer, size, last = [], 0, now
                if not data:
                    return
        finally:
            os.close(self.fd)


class _LineSender:
    """Sends requests to a mission process as JSON lines on its stdin (it reads them on a
    thread of its own, so a write never waits long)."""

    def __init__(self, stdin: IO[bytes]) -> None:
        self.stdin = stdin
        self.lock = threading.Lock()

    def __call__(self, kind: str, payload: Any) -> None:
        line = json.dumps({"kind": kind, "payload": payload}) + "\n"
        with self.lock:
            try:
                self.stdin.write(line.encode("utf-8"))
                self.stdin.flush()
            except (OSError, ValueError):
                pass  # the process has ended: nobody waits for an answer any more


def _run_in_child(
    run: _Run,
    payload: bytes,
    start_event: dict[str, Any],
    config: dict[str, Any],
    address: str,
) -> None:
    publisher = run.publisher
    folder = Path(tempfile.mkdtemp(prefix="mission_widgets-"))
    try:
        path = folder / f"{run.mission_id}.pkl"
        write_payload(path, payload)
        record_r, record_w = os.pipe()
        log_r, log_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mission_widgets.runtime.dask_child",
                    str(record_w),
                    str(path),
                    repr(float(config["heartbeat_secs"])),
                ],
                stdin=subprocess.PIPE,
                stdout=log_w,
                stderr=subprocess.STDOUT,
                pass_fds=(record_w,),
                start_new_session=True,  # its own group: cancel kills what it spawned too
                close_fds=True,
                env=worker_environment(),
            )
        except OSError as exc:
            os.close(record_r)
            os.close(log_r)
            publisher.end(
                "failed", f"could not start a mission process on dask worker {address}: {exc}"
            )
            return
        finally:
            os.close(record_w)
            os.close(log_w)
        publisher.event({**start_event, "child_pid": proc.pid})
        run.attach_process(proc)
        if proc.stdin is not None:
            run.accept_requests(_LineSender(proc.stdin))
        pump = _LogPump(log_r, publisher)
        pump.start()
        last = None  # mission_done waits for the process's last output: the log is complete
        end: dict[str, Any] | None = None  # why the mission could not end by itself
        with os.fdopen(record_r, "r", encoding="utf-8", errors="replace") as records:
            for line in records:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                kind = record.get("kind")
                if kind == "heartbeat":
                    publisher.heartbeat()
                elif kind == "end":
                    end = record
                elif kind == "event" and record["event"].get("event") == "mission_done":
                    last = record
                elif kind == "event":
                    publisher.event(record["event"], record.get("summary"), record.get("final"))
        code = proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()  # a request that comes later is dropped: nobody waits now
        pump.join(5.0)
        if last is not None:
            publisher.event(last["event"], last.get("summary"), last.get("final"))
        if publisher.final is None:
            if run.stop_request is not None:
                publisher.end(*run.stop_request)
            elif end is not None:
                publisher.end(str(end.get("status") or "failed"), end.get("error"))
            else:
                reason = f"the mission's process on dask worker {address}: {describe_exit(code)}"
                if pump.tail:
                    reason += f"; last log line: {pump.tail.strip()}"
                publisher.end("failed", reason)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
