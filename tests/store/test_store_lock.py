"""A stopped lock holder never freezes a kernel: reads answer, a kernel's write
gives up after a few seconds with a StoreError naming the holder (pid, mission)."""

from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
from support.waiting import wait_for

from mission_widgets.runtime.store import BUSY_TIMEOUT_SECS, MissionStore, StoreError
from mission_widgets.runtime.store_lock import describe_holder

HOLDER = """
import os, signal, sys
from mission_widgets.runtime.store import connect_sqlite

conn = connect_sqlite(sys.argv[1])
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE missions SET last_heartbeat = 1 WHERE id = 'busy'")
os.kill(os.getpid(), signal.SIGSTOP)  # stopped inside the write, holding the lock
conn.execute("COMMIT")
"""


def _stopped(proc) -> bool:
    return psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED


@pytest.fixture
def stopped_writer(store, spawn):
    """A worker of mission "busy" stopped (SIGSTOP) in the middle of a store write."""
    store.register("busy", "goal", backend="subprocess", owner=None)
    proc = spawn(HOLDER, str(store.db_path))
    store.set_process("busy", proc.pid, None)
    wait_for(lambda: _stopped(proc), what="the writer stopped inside its write")
    yield proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)


def test_a_kernel_write_names_the_stopped_worker_holding_the_store(store, stopped_writer):
    pid = stopped_writer.pid
    # Reads never wait for the writer (WAL): status() answers at once.
    columns, records = store.status_records()
    assert [r[columns.index("id")] for r in records] == ["busy"]
    assert store.row("busy")["pid"] == pid
    with pytest.raises(StoreError) as caught:
        store.register("new", "goal", backend="subprocess", owner=None)
    message = str(caught.value)
    assert f"waited {BUSY_TIMEOUT_SECS['kernel']:g} s" in message
    assert f"process {pid} (stopped), the worker of mission busy" in message
    assert str(store.db_path) in message
    # Freed when the worker goes on: the same write then succeeds.
    os.kill(pid, signal.SIGCONT)
    assert stopped_writer.wait(timeout=30) == 0
    store.register("new", "goal", backend="subprocess", owner=None)
    assert store.row("new") is not None


def test_a_worker_waits_for_the_lock_longer_than_a_kernel(store, stopped_writer):
    worker = MissionStore(store.root, create=False, role="worker")
    outcome = []

    def write():
        try:
            worker.heartbeat("busy", 5.0)
            outcome.append("written")
        except StoreError as exc:
            outcome.append(exc)
        finally:
            worker.close()

    thread = threading.Thread(target=write)
    thread.start()
    with pytest.raises(StoreError):  # the kernel gives up meanwhile ...
        store.heartbeat("busy")
    assert thread.is_alive()  # ... while the worker still waits
    os.kill(stopped_writer.pid, signal.SIGCONT)
    thread.join(timeout=60)
    assert outcome == ["written"]
    assert store.row("busy")["last_heartbeat"] == 5.0


def test_without_the_lock_table_a_stopped_worker_is_named(spawn):
    sleeper = spawn("import time; time.sleep(120)")
    os.kill(sleeper.pid, signal.SIGSTOP)
    wait_for(lambda: _stopped(sleeper), what="stopped")
    text = describe_holder("/nonexistent/store.sqlite", [("m1", os.getpid()), ("m2", sleeper.pid)])
    assert text.startswith("probably held by a stopped worker: mission m2 (pid")
    os.kill(sleeper.pid, signal.SIGCONT)
