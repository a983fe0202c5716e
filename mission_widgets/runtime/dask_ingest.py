"""The kernel side of the Dask backend, part one: getting a mission's messages into the store.

Workers publish every event, log chunk and heartbeat on the namespace's topics (see
:mod:`.dask_worker`). ``Client.subscribe_topic`` hands each message to :class:`TopicIngest`,
whose thread writes it into the local SQLite store (``append_event`` / ``heartbeat`` /
the log file), deduplicated by uid through :class:`UidLog` (a small table next to the store,
shared by every kernel on it) and kept in order per run: a gap holds later messages until
the scheduler's event log fills it (``replay``), or ``HOLD_SECS`` have passed. A new kernel
first replays ``Client.get_events(topic)``, so it sees what ran while no kernel listened;
missions it has no row for are registered from their ``dask_start`` event (it carries the
goal).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .store import MissionStore, connect_sqlite, open_private

logger = logging.getLogger("mission_widgets.dask")

#: How long a live message waits for an earlier one of its run before it is applied anyway.
HOLD_SECS = 2.0


def unpack(message: Any) -> list[Any]:
    """The messages a topic message carries: a worker sends a run's messages in batches
    (``{"kind": "batch", "messages": [...]}``, see :mod:`.dask_worker`), or one alone."""
    if isinstance(message, dict) and message.get("kind") == "batch":
        return list(message.get("messages") or ())
    return [message]


class UidLog:
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

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The uids recorded inside the block are committed together at its end (or none,
        on an error). Held across the store's batch: a second kernel on the store waits
        here instead of writing the same messages."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def last(self, run: str) -> int:
        row = self._conn().execute("SELECT MAX(n) FROM uids WHERE run=?", (run,)).fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


class Hub:
    """One ``subscribe_topic`` per (client, topic), fanned out to every backend using it."""

    _hubs: dict[tuple[str, str], Hub] = {}
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
                hub = cls._hubs[(client.id, topic)] = Hub(client, topic)
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


class TopicIngest:
    """Writes the messages of one namespace's topics into ``store``, each once and in order.

    ``on_start(mission_id, event)`` is called for each new ``dask_start`` event and
    ``on_end(mission_id, written)`` after a ``mission_done`` is written (``written`` False: the
    mission had already ended in the store, the news is moot); ``on_tick`` runs on the
    ingest thread after each round (about twice a second).
    """

    def __init__(
        self,
        store: MissionStore,
        client: Any,
        topics: tuple[str, str],
        *,
        backend_name: str,
        on_start: Callable[[str, dict[str, Any]], None],
        on_end: Callable[[str, bool], None],
        on_tick: Callable[[], object],
    ) -> None:
        self.store, self.client = store, client
        self.topic, self.heartbeat_topic = topics
        self.backend_name = backend_name
        self.on_start, self.on_end, self.on_tick = on_start, on_end, on_tick
        self.uids = UidLog(store)
        self.lock = threading.RLock()  # held while messages are written
        self.ended = threading.Condition()  # notified after each mission_done
        self.last_replay = 0.0
        self._incoming: collections.deque[Any] = collections.deque()
        self._next: dict[str, int] = {}  # run -> next expected counter
        self._held: dict[str, dict[int, tuple[float, dict[str, Any]]]] = {}
        self._ended: list[tuple[str, bool]] = []  # (mission, notify) of the open batch
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="mission-dask-ingest", daemon=True)

    def start(self, *, replay: bool) -> None:
        with self.lock:
            Hub.add(self.client, self.topic, self._receive)
            Hub.add(self.client, self.heartbeat_topic, self._receive)
            if replay:
                self.replay()
        self._thread.start()

    @property
    def pending(self) -> bool:
        """Whether messages were received that are not written yet."""
        return bool(self._incoming)

    def _receive(self, event: Any) -> None:
        """subscribe_topic handler (runs on the client's event loop: queue, never block)."""
        try:
            _, message = event
        except (TypeError, ValueError):
            return
        self._incoming.append(message)
        self._wake.set()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.flush()
                self.on_tick()
            except Exception as exc:
                logger.warning("mission_widgets: cannot record Dask events: %s", exc)
        self.store.close()  # this thread's connection

    def flush(self) -> int:
        """Write every received message into the store now; returns how many were new."""
        with self.lock:
            messages: list[dict[str, Any]] = []
            while self._incoming:
                messages.extend(unpack(self._incoming.popleft()))
            written = self._write_all(messages, live=True)
            if self._held and self._replay_due():
                written += self.replay()  # the gap is usually in the scheduler's log
            if self._held:
                written += self._in_batch(lambda: self._release_held(force=False))
        return written

    def replay(self) -> int:
        """Read the scheduler's event log for this namespace; write what the store lacks."""
        self.last_replay = time.monotonic()
        try:
            events = self.client.get_events(self.topic)  # not inside a store transaction
        except Exception as exc:
            logger.warning("mission_widgets: cannot read the Dask event log: %s", exc)
            return 0
        messages: list[dict[str, Any]] = []
        for item in events:
            try:
                _, message = item
            except (TypeError, ValueError):
                continue
            messages.extend(unpack(message))
        with self.lock:
            written = self._write_all(messages, live=False)
            return written + self._in_batch(lambda: self._release_held(force=True))

    def write_final(self, message: Any, finished: Callable[[], bool]) -> None:
        """Write a task's returned ``mission_done`` message unless ``finished()`` already;
        first whatever went missing before it (the scheduler's log)."""
        with self.lock:
            self.flush()
            if not isinstance(message, dict):
                return
            run, _, n = str(message.get("uid") or "").partition(":")
            if not finished():
                self.replay()
            if n.isdigit():
                self._in_batch(lambda: self._write(run, int(n), message))

    def _write_all(self, messages: list[dict[str, Any]], *, live: bool) -> int:
        """Write ``messages`` in one transaction. When that fails, one at a time: the first
        that fails alone is dropped (its uid stays unrecorded: a replay brings it back) and
        the error raised; live messages after it wait for the next flush."""
        if not messages:
            return 0
        try:
            return self._in_batch(lambda: sum(self._ingest(m, live=live) for m in messages))
        except Exception:
            if len(messages) == 1:
                raise
        written = 0
        for i, message in enumerate(messages):
            try:
                written += self._in_batch(functools.partial(self._ingest, message, live=live))
            except Exception:
                if live:
                    self._incoming.extendleft(reversed(messages[i + 1 :]))
                raise
        return written

    def _in_batch(self, write: Callable[[], int]) -> int:
        """Run ``write`` in one transaction of the store and of the uid log, then tell of
        the missions that ended in it (once committed: whoever is woken reads them). On an
        error nothing of it stays, in the files or in the ordering state."""
        saved_next = dict(self._next)
        saved_held = {run: dict(held) for run, held in self._held.items()}
        try:
            with self.uids.transaction(), self.store.batch():
                written = write()
        except BaseException:
            self._next, self._held = saved_next, saved_held
            self._ended.clear()
            raise
        ended, self._ended = self._ended, []
        if any(notify for _, notify in ended):
            with self.ended:
                self.ended.notify_all()
        for mission_id, notify in ended:
            self.on_end(mission_id, notify)
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
            expected = self._next[run] = self.uids.last(run) + 1
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

    def _replay_due(self) -> bool:
        """A gap is older than half of HOLD_SECS and the log was not read for HOLD_SECS."""
        now = time.monotonic()
        oldest = min(when for held in self._held.values() for when, _ in held.values())
        return now - oldest > HOLD_SECS / 2 and now - self.last_replay > HOLD_SECS

    def _release_held(self, *, force: bool) -> int:
        """Apply what is held past HOLD_SECS (or, forced, all of it) despite its gap."""
        now = time.monotonic()
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
        if not self.uids.add(run, n, mission_id):
            return 0
        return self._write_new(mission_id, message)  # an error rolls the uid back too

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
                backend=self.backend_name,
                owner=None,
                n_steps=int(event.get("n_steps") or 0),
                model=event.get("model"),
            )
            if name != "dask_start":  # handed to a worker (not queued), which one is unknown
                self.store.set_process(mission_id, 0, None)
        elif row["finished_at"] is not None:
            if name == "mission_done":
                self._end(mission_id, message["uid"], notify=False)
            return 0  # ended here already (cancel, lost worker): later news is moot
        if name == "dask_start":
            self.on_start(mission_id, event)
            self.store.set_process(mission_id, int(event.get("pid") or 0), None)
        self.store.append_event(event, message.get("summary"), message.get("final"))
        if name == "mission_done":
            self._end(mission_id, message["uid"], notify=True)
        return 1

    def _end(self, mission_id: str, uid: str, *, notify: bool) -> None:
        """A mission ended: drop what was kept to order its run's messages."""
        run = uid.partition(":")[0]
        self._next.pop(run, None)
        self._held.pop(run, None)
        self._ended.append((mission_id, notify))  # told once the batch is committed

    def wait_ended(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the next ``mission_done`` (after a flush)."""
        self.flush()
        with self.ended:
            self.ended.wait(timeout)

    def close(self) -> None:
        """Stop listening and writing (missions go on; a later kernel replays them)."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.flush()
        self._closed = True
        Hub.remove(self.client, self.heartbeat_topic, self._receive)
        Hub.remove(self.client, self.topic, self._receive)
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self.uids.close()
