"""The kernel side of the Dask backend: ``MissionOrchestrator(backend="dask", client=...)``.

``client`` is a ``distributed.Client``, a scheduler address (``"tcp://host:8786"``), a
cluster object (``LocalCluster``), or None for the current default client.

``launch`` pickles the mission with :mod:`.payload` (checked at submit, like the subprocess
backend), records a local ``dask_submit`` event, submits :func:`.dask_worker.run_mission_on_dask`
and marks the task ``fire_and_forget``: like a subprocess worker, a mission keeps running
when the kernel goes away. Its messages come back through the scheduler's event log and
:class:`.dask_ingest.TopicIngest` writes them into the local store; no disk is shared
between kernel and workers. The orchestrator's ``poll_async``, ``reconcile``, ``status``
and the panel read the store as for any backend. Decisions and explanations for a waiting
mission (the store's requests) are forwarded to the worker that runs it.

Reattach and history: a new backend (new kernel, new client) on the same scheduler and
namespace first replays the event log into its store. The namespace defaults to
``"mission_widgets:" + store directory``; pass ``namespace=`` to share or separate. Limits:

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

Liveness: ``is_alive`` reads the kernel's Future (finished, erred, cancelled) and, once a
mission has started on a worker, asks the scheduler (``Client.processing`` and task states,
at most once a second) whether that worker still runs it: a worker that left the cluster,
or a task the scheduler rescheduled, means the worker was lost and the mission ends
``failed`` with "dask worker ... was lost". Missions of an earlier kernel are judged the
same way by their task key. ``max_concurrent`` is the orchestrator's window over all of the
cluster; a task never waits on the kernel (it publishes and goes on), so no Dask thread idles.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from ..core.budget import SharedLedger
from ..core.errors import describe_error
from ..core.events import make_event
from ..core.mission import Mission
from ..core.models import model_label
from .backend import Backend, ExitCallback
from .dask_ingest import TopicIngest
from .dask_worker import deliver_on_worker, run_mission_on_dask, stop_on_worker
from .payload import build_payload, dumps_payload
from .processes import process_start_time
from .store import MissionStore

logger = logging.getLogger("mission_widgets.dask")

ISOLATIONS = ("process", "thread")
#: Seconds between scheduler queries about running tasks (processing, task states).
VIEW_TTL = 1.0
#: Task states in which a mission that has not started yet is still coming.
QUEUED_STATES = frozenset({"released", "waiting", "queued", "no-worker", "processing"})
#: Store requests forwarded to the worker that runs a waiting mission.
FORWARDED_REQUESTS = ("decision", "explanation")
#: Shortest interval between two looks at the store's requests (a waiting mission asks its
#: decision source every 0.2 s; the ingest thread wakes on every message).
FORWARD_SECS = 0.2


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
        self._forwarded_at = 0.0
        self._closed = False
        self.ingest = TopicIngest(
            store,
            self.client,
            (self.topic, self.heartbeat_topic),
            backend_name=self.name,
            on_start=self._on_start,
            on_end=self._on_end,
            on_tick=self.forward_requests,
        )
        self.ingest.start(replay=replay)

    def check(self, mission: Mission) -> None:
        dumps_payload(build_payload(mission))

    def shared_ledger(self, budget_id: str, state: dict[str, Any]) -> SharedLedger:
        """On the scheduler (workers share no disk with the store): :mod:`.dask_budget`."""
        from .dask_budget import DaskLedger

        return DaskLedger(self.client, budget_id, state)

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
        with self.store.batch():  # one transaction
            # Handed over: a new orchestrator must not queue it again (pid), and must find
            # its key.
            self.store.set_process(mission.id, os.getpid(), self._kernel_started)
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

    def _on_start(self, mission_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            self._started[mission_id] = (str(event.get("worker")), time.monotonic())
            if event.get("key"):
                self._keys[mission_id] = str(event["key"])
            self._known.add(mission_id)

    def _on_end(self, mission_id: str, written: bool) -> None:
        """A mission ended: drop what was kept to follow it (its Future too, so the cluster
        frees the task's result); wake the orchestrator if the end is news."""
        with self._lock:
            for table in (self._futures, self._keys, self._started, self._retries, self._beats):
                table.pop(mission_id, None)
            self._known.discard(mission_id)
        if written:
            self.on_exit(mission_id)

    def forward_requests(self) -> int:
        """Hand the store's decisions and explanations for missions running on workers to
        the worker that runs each (any process may have written them: ``orch.decide``, the
        CLI, another kernel); returns how many were delivered. One that cannot be delivered
        now goes back to the store for a later round."""
        now = time.monotonic()
        if now - self._forwarded_at < FORWARD_SECS:
            return 0
        self._forwarded_at = now
        with self._lock:
            where = {mission_id: worker for mission_id, (worker, _) in self._started.items()}
        if not where:
            return 0
        delivered = 0
        for request in self.store.take_requests(list(where), FORWARDED_REQUESTS):
            mission_id, kind, payload = request["mission_id"], request["kind"], request["payload"]
            try:
                replies = self.client.run(
                    deliver_on_worker,
                    mission_id,
                    kind,
                    payload,
                    workers=[where[mission_id]],
                    on_error="return",
                )
            except Exception as exc:
                logger.info("mission_widgets: cannot reach the worker of %s: %s", mission_id, exc)
                replies = {}
            if "delivered" in replies.values():
                delivered += 1
            elif not self._finished(mission_id):
                self.store.add_request(mission_id, kind, payload)
        return delivered

    def _info(self, mission_id: str) -> tuple[str | None, tuple[str, float] | None, int]:
        """(task key, (worker, when known) once started, worker_lost_retries) of a mission."""
        with self._lock:
            known = mission_id in self._known
        if not known:  # a mission of an earlier kernel: its events in the store tell
            key: str | None = None
            started: tuple[str, float] | None = None
            retries = 0
            for event in self.store.events_for(mission_id):
                if event.get("event") == "dask_submit":
                    key, started = event.get("key"), None
                    retries = int(event.get("worker_lost_retries") or 0)
                elif event.get("event") == "dask_start":
                    key = event.get("key") or key
                    started = (str(event.get("worker")), 0.0)
            with self._lock:
                if key:
                    self._keys.setdefault(mission_id, key)
                if started:
                    self._started.setdefault(mission_id, started)
                self._retries.setdefault(mission_id, retries)
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
        if future is None or future.status != "pending" or self.ingest.pending:
            # Received before the task ended means written before this answer: poll_async
            # then finds the mission's last event in the store, not a dead task.
            self.ingest.flush()
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
        row = self.store.row(mission_id)
        return row is not None and row["finished_at"] is not None

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
            self.ingest.write_final(message, lambda: self._finished(mission_id))
            if not self._finished(mission_id):
                self._reasons[mission_id] = f"dask task {key} ended without a final event"
            return
        if future.status == "error":
            error: BaseException
            try:
                error = future.exception(timeout=30)
            except Exception as err:  # pragma: no cover - the scheduler went away
                error = err
            if type(error).__name__ == "KilledWorker":
                self._reasons[mission_id] = (
                    f"dask workers were lost while running this mission and the scheduler "
                    f"gave up on task {key}: {error}"
                )
            else:
                self._reasons[mission_id] = f"dask task {key} failed: {describe_error(error)}"
            return
        self._reasons[mission_id] = f"dask task {key} was {future.status}"

    def _settle_gone(self, mission_id: str, key: str, state: str | None) -> None:
        """A task of an earlier kernel is no longer running: fetch its end, or explain."""
        self.ingest.flush()
        if not self._finished(mission_id) and time.monotonic() - self.ingest.last_replay > 1.0:
            self.ingest.replay()
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
        status, reason = "cancelled", "cancelled by user"
        self.ingest.flush()
        key, started, _ = self._info(mission_id)
        with self._lock:
            future = self._futures.get(mission_id)
        # Where it runs (or, not started yet, everywhere: a tombstone stops a start in flight).
        workers = [started[0]] if started is not None else None
        try:
            replies = self.client.run(
                stop_on_worker,
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
            self.ingest.wait_ended(min(0.1, max(0.0, deadline - time.monotonic())))

    def shutdown(self) -> None:
        """Stop listening (missions keep running on the cluster, and are replayed later)."""
        if self._closed:
            return
        self._closed = True
        self.ingest.close()
        with self._lock:
            self._futures.clear()
        if self._own_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"DaskBackend({self.client!r}, namespace={self.namespace!r})"
