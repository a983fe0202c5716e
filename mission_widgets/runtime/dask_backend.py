"""Run missions on a dask.distributed cluster: ``MissionOrchestrator(backend="dask", client=...)``.

``client`` is a ``distributed.Client``, a scheduler address (``"tcp://host:8786"``), a
cluster object (``LocalCluster``), or None for the current default client.

How a mission travels
---------------------
**Kernel.** ``launch`` pickles the mission with :mod:`.payload` (checked at submit, like
the subprocess backend), records a local ``dask_submit`` event, submits
:func:`run_mission_on_dask` and marks the task ``fire_and_forget``: like a subprocess
worker, a mission keeps running when the kernel goes away.

**Dask worker.** The task first *claims* the mission in the scheduler's metadata. A second
claim means the scheduler re-ran the task because the worker that ran it was lost: the
mission then ends ``failed`` with that reason instead of silently starting over (unless
``worker_lost_retries`` allows it). It then runs the mission

* ``isolation="process"`` (default): in a child process, ``python -m mission_widgets.worker
  --stream``, the very worker code of the subprocess backend. Step timeouts use SIGALRM in
  the child's main thread (they stop blocking calls too), cancel kills the child's process
  group, stdout/stderr are forwarded to the kernel's log file, and the child exits by itself
  when its Dask worker dies (its pipe breaks). Costs one Python start per mission (~0.15 s).
* ``isolation="thread"``: in the task's own thread (no process start). Cancel is
  cooperative plus an asynchronous exception in that thread (core.timeouts' mechanism): it
  stops pure-Python code at once, a blocking C call (``time.sleep``, a socket read) only
  when it returns, and it does not reach parallel steps' or timed attempts' helper threads.
  Step timeouts use the thread mechanism of :mod:`core.timeouts`. Executor output goes to
  the Dask worker's own log.

Every event is published with ``Worker.log_event`` on the namespace's topic together with
the store's summary columns (and the final state on ``mission_done``) and a per-event id
(``uid`` = run token + counter); heartbeats go to a second topic, log output in chunks.
No disk is shared between kernel and workers.

**Kernel again.** ``Client.subscribe_topic`` hands each message to an ingest thread that
writes it into the local SQLite store (``append_event`` / ``heartbeat``), deduplicated by
uid through a small table next to the store, and kept in order per run (a gap holds later
messages until the scheduler's event log fills it). The orchestrator's ``poll_async``,
``reconcile``, ``status`` and the panel read the store as for any backend.

Reattach and history
--------------------
A new backend (new kernel, new client) on the same scheduler and namespace first replays
``Client.get_events(topic)`` into its store, so it sees what ran while no kernel listened.
Missions it has no row for are registered from their ``dask_start`` event (which carries the
goal). The namespace defaults to ``"mission_widgets:" + store directory``; pass
``namespace=`` to share or separate. Limits, honestly:

* the scheduler keeps the last ``distributed.admin.low-level-log-length`` messages per topic
  (default 1000, i.e. the events of roughly the last 25-30 ten-step missions of a
  namespace); raise it on the scheduler for longer absences. Older ones are gone;
* a scheduler restart loses the event log, the claims and every queued or running task;
* a mission whose events rolled out of the log and whose task is gone is marked ``failed``
  with a message that says so; one that ended while the kernel was away is otherwise
  complete in the store;
* the scheduler's metadata keeps one small claim (~100 bytes) per mission for its lifetime;
* event timestamps come from the worker's clock (stall detection compares them with the
  kernel's); heartbeats are stamped on arrival with the kernel's clock.

Liveness
--------
``alive`` reads the kernel's Future (finished, erred, cancelled) and, once a mission has
started on a worker, asks the scheduler (``Client.processing`` and task states, at most once
a second) whether that worker still runs it: a worker that left the cluster, or a task the
scheduler rescheduled, means the worker was lost and the mission ends ``failed`` with
"dask worker ... was lost". Missions of an earlier kernel are judged the same way by their
task key. ``max_concurrent`` is the orchestrator's window over all of the cluster; a task
never waits on the kernel (it publishes and goes on), so no Dask thread idles.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import itertools
import json
import logging
import os
import pickle
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import MissionCancelled, describe_error
from ..core.events import make_event
from ..core.mission import Mission
from ..core.models import model_label
from ..core.timeouts import async_raise
from .backends import Backend, ExitCallback, worker_environment
from .payload import build_payload, dumps_payload, write_payload
from .processes import describe_exit, kill_process_tree, process_start_time
from .store import MissionStore, connect_sqlite, open_private
from .worker import Heartbeat, event_record, run_payload

logger = logging.getLogger("mission_widgets.dask")

ISOLATIONS = ("process", "thread")
#: Metadata path (on the scheduler) under which each mission's claim is kept.
CLAIMS = ("mission_widgets", "claims")
#: Seconds between scheduler queries about running tasks (processing, task states).
VIEW_TTL = 1.0
#: How long a live message waits for an earlier one of its run before it is applied anyway.
HOLD_SECS = 2.0
#: Shortest interval between log chunks a task publishes for one mission.
LOG_FLUSH_SECS = 0.5
LOG_CHUNK_BYTES = 16 * 1024
#: Task states in which a mission that has not started yet is still coming.
QUEUED_STATES = frozenset({"released", "waiting", "queued", "no-worker", "processing"})


# ==========================================================================================
# Worker side: what runs inside a Dask worker process
# ==========================================================================================


class _Publisher:
    """Sends one run's messages to the scheduler's event log (``Worker.log_event``).

    Gives each event and log chunk a uid (``run:counter``), remembers the latest summary
    and, once sent, the ``mission_done`` message (the task's return value). Nothing is sent
    after ``mission_done``.
    """

    def __init__(self, worker: Any, mission_id: str, topic: str, heartbeat_topic: str) -> None:
        self.worker = worker
        self.mission_id = mission_id
        self.topic = topic
        self.heartbeat_topic = heartbeat_topic
        self.run = os.urandom(4).hex()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.summary: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        #: (status, reason) that a stop request puts on the mission's last event.
        self.override: tuple[str, str] | None = None

    def _uid(self) -> str:
        return f"{self.run}:{next(self._counter)}"

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
            self.worker.log_event(self.topic, message)

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
            self.worker.log_event(self.topic, message)


class _Run:
    """One mission running in this worker process (what a stop request acts on)."""

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
        # Off the worker's event loop: the grace period would block it.
        threading.Thread(
            target=kill_process_tree,
            args=(self.proc.pid, self.proc_started, self.grace),
            name=f"mission-kill-{self.mission_id}",
            daemon=True,
        ).start()


_ACTIVE: dict[str, _Run] = {}
_TOMBSTONES: dict[str, tuple[str, str, float]] = {}
_ACTIVE_LOCK = threading.Lock()


def _stop_on_worker(mission_id: str, grace: float, status: str, reason: str) -> str:
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


def _claim(mission_id: str, address: str, retries: int) -> tuple[int, str | None]:
    """Record that this run starts; return (start number, refusal reason or None).

    Tasks only start twice when the scheduler lost the worker that ran them, so a second
    claim is the sign of a lost worker.
    """
    from distributed import get_client

    keys = [*CLAIMS, mission_id]
    try:
        client = get_client()
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
    except BaseException as exc:  # never leave the kernel without an end
        publisher.end("failed", f"the dask task failed: {describe_error(exc)}")
        if not isinstance(exc, Exception):
            raise
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
    publisher.event(start_event)
    heartbeat = Heartbeat(
        None, None, float(config["heartbeat_secs"]), beat=publisher.heartbeat
    ).start()

    def sink(event: dict[str, Any]) -> None:
        record = _plain(event_record(mission, event))
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
                    "mission_widgets.worker",
                    "--stream",
                    str(record_w),
                    str(path),
                    repr(float(config["heartbeat_secs"])),
                ],
                stdin=subprocess.DEVNULL,
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
        pump = _LogPump(log_r, publisher)
        pump.start()
        last = None  # mission_done waits for the process's last output: the log is complete
        with os.fdopen(record_r, "r", encoding="utf-8", errors="replace") as records:
            for line in records:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                kind = record.get("kind")
                if kind == "heartbeat":
                    publisher.heartbeat()
                elif kind == "event" and record["event"].get("event") == "mission_done":
                    last = record
                elif kind == "event":
                    publisher.event(record["event"], record.get("summary"), record.get("final"))
        code = proc.wait()
        pump.join(5.0)
        if last is not None:
            publisher.event(last["event"], last.get("summary"), last.get("final"))
        if publisher.final is None:
            if run.stop_request is not None:
                publisher.end(*run.stop_request)
            else:
                reason = f"the mission's process on dask worker {address}: {describe_exit(code)}"
                if pump.tail:
                    reason += f"; last log line: {pump.tail.strip()}"
                publisher.end("failed", reason)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ==========================================================================================
# Kernel side
# ==========================================================================================


class _UidLog:
    """Which message uids a store already holds (``dask_uids.sqlite`` next to the store).

    Shared by every kernel and backend on the store, so a message is written once however
    many of them receive it (live, replayed, or from a task's result).
    """

    def __init__(self, store: MissionStore) -> None:
        self.path = store.root / "dask_uids.sqlite"
        if not self.path.exists():
            os.close(open_private(self.path, os.O_WRONLY | os.O_CREAT))
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS uids (run TEXT NOT NULL, n INTEGER NOT NULL,"
            " mission_id TEXT NOT NULL, PRIMARY KEY (run, n))"
        )

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # Each thread uses its own; close() (any thread) closes them all.
            conn = connect_sqlite(self.path, check_same_thread=False)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def add(self, run: str, n: int, mission_id: str) -> bool:
        """Record a uid; False when it was already there."""
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO uids (run, n, mission_id) VALUES (?, ?, ?)",
            (run, n, mission_id),
        )
        return cur.rowcount == 1

    def forget(self, run: str, n: int) -> None:
        self._conn().execute("DELETE FROM uids WHERE run=? AND n=?", (run, n))

    def last(self, run: str) -> int:
        row = self._conn().execute("SELECT MAX(n) FROM uids WHERE run=?", (run,)).fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class _Hub:
    """One ``subscribe_topic`` per (client, topic), fanned out to every backend using it."""

    _hubs: dict[tuple[str, str], _Hub] = {}
    _lock = threading.Lock()

    def __init__(self, client: Any, topic: str) -> None:
        self.client, self.topic = client, topic
        self.callbacks: list[Callable[[Any], None]] = []

    def __call__(self, event: Any) -> None:
        for callback in list(self.callbacks):
            callback(event)

    @classmethod
    def add(cls, client: Any, topic: str, callback: Callable[[Any], None]) -> None:
        with cls._lock:
            hub = cls._hubs.get((client.id, topic))
            if hub is None:
                hub = cls._hubs[(client.id, topic)] = _Hub(client, topic)
                client.subscribe_topic(topic, hub)
            hub.callbacks.append(callback)

    @classmethod
    def remove(cls, client: Any, topic: str, callback: Callable[[Any], None]) -> None:
        with cls._lock:
            hub = cls._hubs.get((client.id, topic))
            if hub is None:
                return
            if callback in hub.callbacks:
                hub.callbacks.remove(callback)
            if not hub.callbacks:
                del cls._hubs[(client.id, topic)]
                if client.status == "running":
                    with contextlib.suppress(Exception):
                        client.unsubscribe_topic(topic)


class _View:
    """What the scheduler said about running tasks at one moment."""

    def __init__(self, taken: float, processing: dict[str, set], states: dict[str, Any]):
        self.taken, self.processing, self.states = taken, processing, states


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "backend='dask' needs dask.distributed: pip install 'mission-widgets[dask]'"
        ) from None
    return distributed


def _resolve_client(client: Any, distributed: Any) -> tuple[Any, bool]:
    """(client, owned): a Client as given, or one made from an address or a cluster."""
    if client is None:
        try:
            return distributed.default_client(), False
        except ValueError:
            raise ValueError(
                "backend='dask' needs client=: a distributed.Client, a scheduler address "
                "such as 'tcp://127.0.0.1:8786', or a cluster (e.g. LocalCluster())"
            ) from None
    if isinstance(client, distributed.Client):
        if client.asynchronous:
            raise ValueError("backend='dask' needs a synchronous distributed.Client")
        return client, False
    if isinstance(client, str | os.PathLike) or hasattr(client, "scheduler_address"):
        return distributed.Client(client, set_as_default=False), True
    raise TypeError(
        "client= must be a distributed.Client, a scheduler address or a cluster, got "
        f"{type(client).__name__}"
    )


class DaskBackend(Backend):
    """Runs each mission as a task on a dask.distributed cluster (see the module docs).

    Options (as extra keyword arguments of MissionOrchestrator): ``client``, ``namespace``
    (topic name; default from the store directory), ``isolation`` ("process" or "thread"),
    ``worker_lost_retries`` (0: a lost worker fails the mission), ``submit_options``
    (extra ``Client.submit`` arguments such as ``resources`` or ``workers``), ``replay``
    (read the scheduler's event log at start, default True).
    """

    name = "dask"
    has_heartbeat = True

    def __init__(
        self,
        store: MissionStore,
        on_exit: ExitCallback,
        client: Any = None,
        *,
        namespace: str | None = None,
        isolation: str = "process",
        worker_lost_retries: int = 0,
        submit_options: dict[str, Any] | None = None,
        replay: bool = True,
    ) -> None:
        super().__init__(store, on_exit)
        distributed = _import_distributed()
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
        if (
            isinstance(worker_lost_retries, bool)
            or not isinstance(worker_lost_retries, int)
            or worker_lost_retries < 0
        ):
            raise ValueError(
                f"worker_lost_retries must be an int >= 0, got {worker_lost_retries!r}"
            )
        self.client, self._own_client = _resolve_client(client, distributed)
        self.namespace = namespace or f"mission_widgets:{store.root}"
        self.topic = self.namespace
        self.heartbeat_topic = self.namespace + ":heartbeat"
        self.isolation = isolation
        self.worker_lost_retries = worker_lost_retries
        self.submit_options = dict(submit_options or {})
        self._kernel_started = process_start_time(os.getpid())
        self._lock = threading.RLock()
        self._futures: dict[str, Any] = {}
        self._keys: dict[str, str] = {}
        self._retries: dict[str, int] = {}
        self._started: dict[str, tuple[str, float]] = {}  # mission -> (worker, when known)
        self._known: set[str] = set()  # missions whose store events were read for the above
        self._reasons: dict[str, str] = {}
        self._beats: dict[str, float] = {}
        self._view_cache: _View | None = None
        self._uids = _UidLog(store)
        self._incoming: collections.deque = collections.deque()
        self._ingest_lock = threading.RLock()
        self._next: dict[str, int] = {}  # run -> next expected counter
        self._held: dict[str, dict[int, tuple[float, dict]]] = {}
        self._last_replay = 0.0
        self._ended = threading.Condition()
        self._wake = threading.Event()
        self._closed = False
        with self._ingest_lock:
            _Hub.add(self.client, self.topic, self._receive)
            _Hub.add(self.client, self.heartbeat_topic, self._receive)
            if replay:
                self.replay()
        self._thread = threading.Thread(
            target=self._ingest_loop, name="mission-dask-ingest", daemon=True
        )
        self._thread.start()

    # -- submitting ---------------------------------------------------------------------------

    def check(self, mission: Mission) -> None:
        dumps_payload(build_payload(mission))

    def launch(self, mission: Mission, heartbeat_secs: float) -> int | None:
        from distributed import fire_and_forget

        data = dumps_payload(build_payload(mission))
        key = f"mission-{mission.id}-{os.urandom(3).hex()}"
        info = {
            "goal": mission.goal,
            "model": model_label(mission.model),
            "n_steps": len(mission.steps or []),
        }
        config = {
            "topic": self.topic,
            "heartbeat_topic": self.heartbeat_topic,
            "heartbeat_secs": float(heartbeat_secs),
            "isolation": self.isolation,
            "worker_lost_retries": self.worker_lost_retries,
        }
        # Handed over: a new orchestrator must not queue it again (pid), and must find its key.
        self.store.set_process(mission.id, os.getpid(), self._kernel_started)
        submitted = make_event(
            "dask_submit",
            mission.id,
            key=key,
            namespace=self.namespace,
            isolation=self.isolation,
            worker_lost_retries=self.worker_lost_retries,
            scheduler=self.client.scheduler.address,
            uid=f"submit:{key}",
        )
        self.store.append_event(submitted)
        with self._lock:
            self._keys[mission.id] = key
            self._retries[mission.id] = self.worker_lost_retries
            self._known.add(mission.id)
            self._started.pop(mission.id, None)
            self._reasons.pop(mission.id, None)
        future = self.client.submit(
            run_mission_on_dask,
            data,
            mission.id,
            info,
            config,
            key=key,
            pure=False,
            **self.submit_options,
        )
        fire_and_forget(future)  # runs on even if this kernel goes away
        with self._lock:
            self._futures[mission.id] = future
        # No Future.add_done_callback: its thread pool keeps a non-daemon thread for the
        # kernel's lifetime. mission_done wakes the orchestrator; other ends show at its poll.
        return None

    # -- ingesting -----------------------------------------------------------------------------

    def _receive(self, event: Any) -> None:
        """subscribe_topic handler (runs on the client's event loop: queue, never block)."""
        try:
            _, message = event
        except (TypeError, ValueError):
            return
        self._incoming.append(message)
        self._wake.set()

    def _ingest_loop(self) -> None:
        while not self._closed:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.flush()
            except Exception as exc:
                logger.warning("mission_widgets: cannot record Dask events: %s", exc)
        self.store.close()  # this thread's connection

    def flush(self) -> int:
        """Write every received message into the store now; returns how many were new."""
        written = 0
        with self._ingest_lock:
            while self._incoming:
                written += self._ingest(self._incoming.popleft(), live=True)
            written += self._release_held(force=False)
        return written

    def replay(self) -> int:
        """Read the scheduler's event log for this namespace; write what the store lacks."""
        self._last_replay = time.monotonic()
        try:
            events = self.client.get_events(self.topic)
        except Exception as exc:
            logger.warning("mission_widgets: cannot read the Dask event log: %s", exc)
            return 0
        written = 0
        with self._ingest_lock:
            for item in events:
                try:
                    _, message = item
                except (TypeError, ValueError):
                    continue
                written += self._ingest(message, live=False)
            written += self._release_held(force=True)
        return written

    def _ingest(self, message: Any, *, live: bool) -> int:
        if not isinstance(message, dict) or not message.get("mission_id"):
            return 0
        mission_id = message["mission_id"]
        if message.get("kind") == "heartbeat":
            self.store.heartbeat(mission_id)
            return 0
        run, _, counter = str(message.get("uid") or "").partition(":")
        try:
            n = int(counter)
        except ValueError:
            return 0
        expected = self._next.get(run)
        if expected is None:
            expected = self._next[run] = self._uids.last(run) + 1
        if n > expected and live:
            self._held.setdefault(run, {})[n] = (time.monotonic(), message)
            return 0
        written = self._write(run, n, message)
        if n >= expected:
            self._next[run] = n + 1
        return written + self._release_run(run)

    def _release_run(self, run: str) -> int:
        """Apply held messages of ``run`` that are now next in line."""
        held = self._held.get(run)
        written = 0
        while held and self._next.get(run) in held:
            n = self._next[run]
            _, message = held.pop(n)
            written += self._write(run, n, message)
            self._next[run] = n + 1
        if held is not None and not held:
            del self._held[run]
        return written

    def _release_held(self, *, force: bool) -> int:
        """Fill gaps from the scheduler's log; past HOLD_SECS (or forced), apply what is held."""
        if not self._held:
            return 0
        now = time.monotonic()
        oldest = min(when for held in self._held.values() for when, _ in held.values())
        if not force and now - oldest > HOLD_SECS / 2 and now - self._last_replay > HOLD_SECS:
            self.replay()  # (re-enters: the lock is reentrant) the gap is usually in the log
        written = 0
        for run in list(self._held):
            held = self._held[run]
            if not force and now - min(when for when, _ in held.values()) < HOLD_SECS:
                continue
            for n in sorted(held):
                written += self._write(run, n, held[n][1])
                self._next[run] = max(self._next.get(run, 0), n + 1)
            del self._held[run]
        return written

    def _write(self, run: str, n: int, message: dict[str, Any]) -> int:
        mission_id = message["mission_id"]
        if not self._uids.add(run, n, mission_id):
            return 0
        try:
            return self._write_new(mission_id, message)
        except BaseException:
            self._uids.forget(run, n)
            raise

    def _write_new(self, mission_id: str, message: dict[str, Any]) -> int:
        kind = message.get("kind")
        if kind == "log":
            text = str(message.get("text") or "")
            fd = open_private(
                self.store.log_file(mission_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND
            )
            try:
                os.write(fd, text.encode("utf-8", "replace"))
            finally:
                os.close(fd)
            return 1
        if kind != "event" or not isinstance(message.get("event"), dict):
            return 0
        event = dict(message["event"])
        event["uid"] = message["uid"]
        name = event.get("event")
        row = self.store.row(mission_id)
        if row is None:
            if not event.get("goal"):
                return 0  # its first events have left the scheduler's log: nothing to show
            self.store.register(
                mission_id,
                event["goal"],
                backend=self.name,
                owner=None,
                n_steps=int(event.get("n_steps") or 0),
                model=event.get("model"),
            )
            if name != "dask_start":  # handed to a worker (not queued), which one is unknown
                self.store.set_process(mission_id, 0, None)
        elif row.get("finished_at") is not None:
            if name == "mission_done":
                self._forget(mission_id, message["uid"])
            return 0  # ended here already (cancel, lost worker): later news is moot
        if name == "dask_start":
            with self._lock:
                self._started[mission_id] = (str(event.get("worker")), time.monotonic())
                if event.get("key"):
                    self._keys[mission_id] = str(event["key"])
                self._known.add(mission_id)
            self.store.set_process(mission_id, int(event.get("pid") or 0), None)
        self.store.append_event(event, message.get("summary"), message.get("final"))
        if name == "mission_done":
            self._forget(mission_id, message["uid"])
            with self._ended:
                self._ended.notify_all()
            self.on_exit(mission_id)
        return 1

    def _forget(self, mission_id: str, uid: str) -> None:
        """A mission ended: drop what was kept to follow it (its Future too, so the cluster
        frees the task's result)."""
        run = uid.partition(":")[0]
        self._next.pop(run, None)
        self._held.pop(run, None)
        with self._lock:
            for table in (self._futures, self._keys, self._started, self._retries, self._beats):
                table.pop(mission_id, None)
            self._known.discard(mission_id)

    # -- liveness ------------------------------------------------------------------------------

    def _info(self, mission_id: str) -> tuple[str | None, tuple[str, float] | None, int]:
        """(task key, (worker, when known) once started, worker_lost_retries) of a mission."""
        with self._lock:
            known = mission_id in self._known
        if not known:  # a mission of an earlier kernel: its events in the store tell
            key = started = None
            retries = 0
            for event in self.store.events_for(mission_id):
                if event.get("event") == "dask_submit":
                    key, retries, started = event.get("key"), event.get("worker_lost_retries"), None
                elif event.get("event") == "dask_start":
                    key = event.get("key") or key
                    started = (str(event.get("worker")), 0.0)
            with self._lock:
                if key:
                    self._keys.setdefault(mission_id, key)
                if started:
                    self._started.setdefault(mission_id, started)
                self._retries.setdefault(mission_id, int(retries or 0))
                self._known.add(mission_id)
        with self._lock:
            return (
                self._keys.get(mission_id),
                self._started.get(mission_id),
                self._retries.get(mission_id, 0),
            )

    def _view(self) -> _View | None:
        """The scheduler's view of our running tasks, at most VIEW_TTL old (one query a
        second however many missions run)."""
        with self._lock:
            view = self._view_cache
            if view is not None and time.monotonic() - view.taken < VIEW_TTL:
                return view
            keys = list(self._keys.values())
        taken = time.monotonic()
        try:
            processing = {w: set(ks) for w, ks in self.client.processing().items()}
            states = self.client.sync(self.client.scheduler.get_task_status, keys=keys)
        except Exception as exc:
            logger.info("mission_widgets: cannot ask the scheduler about tasks: %s", exc)
            return None
        view = _View(taken, processing, dict(states))
        with self._lock:
            self._view_cache = view
        return view

    def _lost(self, mission_id: str, key: str, started: tuple[str, float], retries: int) -> bool:
        worker, known_at = started
        view = self._view()
        if view is None or view.taken < known_at:
            return False  # a view from before the start cannot judge it: wait for the next
        if worker not in view.processing:
            self._reasons[mission_id] = (
                f"dask worker {worker} was lost while running this mission (it left the "
                "cluster); the mission is not re-run"
            )
            return True
        if key in view.processing[worker]:
            return False
        state = view.states.get(key)
        if state in (None, "memory", "erred", "forgotten"):
            return False  # ended: its last events are on their way
        if retries:
            return False  # the user allowed re-runs: the scheduler's retry is welcome
        self._reasons[mission_id] = (
            f"dask worker {worker} stopped running this mission (the scheduler has it "
            f"{state} again, so that worker was lost); the mission is not re-run"
        )
        return True

    def _beat_queued(self, mission_id: str) -> None:
        """A mission still queued on the scheduler is not stalled: stamp its heartbeat."""
        now = time.monotonic()
        if now - self._beats.get(mission_id, 0.0) >= 1.0:
            self._beats[mission_id] = now
            self.store.heartbeat(mission_id)

    def is_alive(self, row: Any) -> bool | None:
        mission_id = row["id"]
        if row.get("finished_at") is not None:
            return False  # its last event is in the store
        with self._lock:
            future = self._futures.get(mission_id)
        if future is None or future.status != "pending" or self._incoming:
            # Received before the task ended means written before this answer: poll_async
            # then finds the mission's last event in the store, not a dead task.
            self.flush()
        key, started, retries = self._info(mission_id)
        if future is not None:
            status = future.status
            if status == "pending":
                if started is not None:
                    return not self._lost(mission_id, future.key, started, retries)
                self._beat_queued(mission_id)
                return True
            self._settle_future(mission_id, future)
            with self._lock:
                self._futures.pop(mission_id, None)
            return False
        if key is None:
            return True  # nothing to ask the scheduler: heartbeats tell (reconcile)
        view = self._view()
        if view is None:
            return True
        state = view.states.get(key)
        if state in (None, "memory", "erred", "forgotten"):
            self._settle_gone(mission_id, key, state)
            return False
        if started is not None:
            return not self._lost(mission_id, key, started, retries)
        if state in QUEUED_STATES:
            self._beat_queued(mission_id)
            return True
        return True

    def _finished(self, mission_id: str) -> bool:
        row = self.store.row(mission_id) or {}
        return row.get("finished_at") is not None

    def _settle_future(self, mission_id: str, future: Any) -> None:
        """The task ended: make sure its last message is in the store, or say why not."""
        if self._finished(mission_id):
            return
        key = future.key
        if future.status == "finished":
            try:
                message = future.result(timeout=30)
            except Exception as exc:
                self._reasons[mission_id] = (
                    f"dask task {key} ended, but its result is unreadable: {describe_error(exc)}"
                )
                return
            with self._ingest_lock:
                self.flush()
                if isinstance(message, dict):
                    run, _, n = str(message.get("uid") or "").partition(":")
                    if not self._finished(mission_id):
                        self.replay()  # whatever went missing before the end
                    if n.isdigit():
                        self._write(run, int(n), message)
            if not self._finished(mission_id):
                self._reasons[mission_id] = f"dask task {key} ended without a final event"
            return
        if future.status == "error":
            try:
                exc = future.exception(timeout=30)
            except Exception as err:  # pragma: no cover - the scheduler went away
                exc = err
            if type(exc).__name__ == "KilledWorker":
                self._reasons[mission_id] = (
                    f"dask workers were lost while running this mission and the scheduler "
                    f"gave up on task {key}: {exc}"
                )
            else:
                self._reasons[mission_id] = f"dask task {key} failed: {describe_error(exc)}"
            return
        self._reasons[mission_id] = f"dask task {key} was {future.status}"

    def _settle_gone(self, mission_id: str, key: str, state: str | None) -> None:
        """A task of an earlier kernel is no longer running: fetch its end, or explain."""
        self.flush()
        if not self._finished(mission_id) and time.monotonic() - self._last_replay > 1.0:
            self.replay()
        if self._finished(mission_id):
            return
        if state == "erred":
            self._reasons[mission_id] = f"dask task {key} failed on the cluster"
        else:
            self._reasons[mission_id] = (
                f"dask task {key} is no longer on the scheduler and its final event was not "
                "received: it ended while no kernel was listening and the scheduler's event "
                "log no longer holds it (see distributed.admin.low-level-log-length), or the "
                "scheduler restarted"
            )

    def exit_reason(self, row: Any) -> str:
        mission_id = row["id"]
        return self._reasons.get(mission_id) or (
            f"dask task {self._keys.get(mission_id, '?')} ended without a final event"
        )

    # -- stopping -------------------------------------------------------------------------------

    def can_cancel_here(self, row: Any) -> bool:
        return True

    @classmethod
    def observer(cls, store: MissionStore) -> Backend:
        """Without a client nothing can be asked of the cluster: the base answers."""
        return Backend(store)

    def stop(self, row: Any, grace: float) -> None:
        """Stop the mission where it runs (kill its process / interrupt its thread), or
        make sure it never starts; wait up to ``grace`` + 5 s for its last event."""
        mission_id = row["id"]
        if row.get("status") == "stalled" and row.get("stall_reason"):
            status, reason = "stalled", f"{row['stall_reason']} (killed)"
        else:
            status, reason = "cancelled", "cancelled by user"
        self.flush()
        key, started, _ = self._info(mission_id)
        with self._lock:
            future = self._futures.get(mission_id)
        # Where it runs (or, not started yet, everywhere: a tombstone stops a start in flight).
        workers = [started[0]] if started is not None else None
        try:
            replies = self.client.run(
                _stop_on_worker,
                mission_id,
                float(grace),
                status,
                reason,
                workers=workers,
                on_error="return",
            )
        except Exception as exc:
            logger.info("mission_widgets: cannot reach dask workers to stop %s: %s", key, exc)
            replies = {}
        if future is not None and future.status == "pending" and started is None:
            future.cancel(force=True, reason=reason)
        if "stopping" not in replies.values():
            return  # nothing of it runs anywhere we can reach
        deadline = time.monotonic() + grace + 5.0
        while not self._finished(mission_id) and time.monotonic() < deadline:
            self.flush()
            with self._ended:
                self._ended.wait(min(0.1, max(0.0, deadline - time.monotonic())))

    def shutdown(self) -> None:
        """Stop listening (missions keep running on the cluster, and are replayed later)."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.flush()
        self._closed = True
        _Hub.remove(self.client, self.topic, self._receive)
        _Hub.remove(self.client, self.heartbeat_topic, self._receive)
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._uids.close()
        with self._lock:
            self._futures.clear()
        if self._own_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskBackend({self.client!r}, namespace={self.namespace!r})"
