"""The Dask backend against a cluster started as a user would: ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1 (separate processes, a scheduler file in tmp_path)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support.dask_tasks import Marker, Steady, dask_start, process_gone, started_info, wait_for

from mission_widgets import Mission, MissionOrchestrator, MissionStep

pytestmark = [pytest.mark.dask, pytest.mark.slow]


def _start(args: list[str], log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dask", *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hung process
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture
def cli_cluster(tmp_path):
    """(scheduler address, log path) of a scheduler and two workers; stopped at the end."""
    scheduler_file = tmp_path / "scheduler.json"
    log_path = tmp_path / "cluster.log"
    procs = []
    with open(log_path, "ab") as log:
        procs.append(
            _start(
                [
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--dashboard-address",  # its /health server: loopback, a free port
                    "127.0.0.1:0",
                    "--scheduler-file",
                    str(scheduler_file),
                ],
                log,
            )
        )
        try:
            info = wait_for(
                lambda: scheduler_file.exists() and json.loads(scheduler_file.read_text() or "{}"),
                60,
                f"the scheduler file (log: {log_path})",
            )
            for i in range(2):
                procs.append(
                    _start(
                        [
                            "worker",
                            "--scheduler-file",
                            str(scheduler_file),
                            "--nthreads",
                            "1",
                            "--host",
                            "127.0.0.1",
                            "--no-dashboard",
                            "--dashboard-address",
                            "127.0.0.1:0",
                            "--name",
                            f"worker-{i}",
                        ],
                        log,
                    )
                )
            yield info["address"], log_path
        finally:
            for proc in reversed(procs):  # workers first, then the scheduler
                _stop(proc)


def test_missions_on_a_cluster_of_cli_processes(cli_cluster, tmp_path):
    address, log_path = cli_cluster
    # The orchestrator makes (and closes) its own client from the address.
    orch = MissionOrchestrator(
        max_concurrent=2,
        backend="dask",
        client=address,
        store=tmp_path / "store",
        heartbeat_secs=0.2,
        heartbeat_timeout_secs=1.0,
    )
    try:
        orch.backend.client.wait_for_workers(2, timeout=60)

        # submit + run_all, progress mirrored
        missions = [
            Mission(f"cli {i}", steps=[MissionStep("a", "step a", executor=Steady())])
            for i in range(2)
        ]
        for mission in missions:
            orch.submit(mission)
        orch.run_all()
        for mission in missions:
            assert mission.status == "succeeded", mission.error
            assert mission.steps[0].result == "STEP A"
            assert any(e["event"] == "progress" for e in mission.audit_log)
        assert set(orch.status()["status"]) == {"succeeded"}
        try:
            from mission_widgets.widgets import MissionPanel
        except ImportError:  # the panel is being built in parallel; test_dask_backend says so
            MissionPanel = None
        if MissionPanel is not None:
            panel = MissionPanel(orch, auto_refresh=False)
            try:
                drawn = {row["id"]: row for row in panel.rows}
                assert set(drawn) == {m.id for m in missions}
                assert all(row["status"] == "succeeded" for row in drawn.values())
            finally:
                panel.close()

        # reconcile flags a mission whose process froze (no heartbeat), and kills it
        started0, marker0 = tmp_path / "started0", tmp_path / "marker0"
        frozen = Mission(
            "freeze", steps=[MissionStep("w", "w", executor=Marker(started0, marker0, 30))]
        )
        orch.run_async(frozen)
        wait_for(started0.exists, 30, "the executor to start")
        frozen_pid = started_info(started0)[1]
        os.kill(frozen_pid, signal.SIGSTOP)
        wait_for(lambda: frozen.id in orch.reconcile(600), 15, "a stall flag")
        assert frozen.stall_reason == "no_heartbeat"
        orch.reconcile(600, kill=True)
        assert frozen.status == "failed" and frozen.error.endswith("killed by reconcile()")
        wait_for(lambda: process_gone(frozen_pid), 10, "the frozen process to be killed")

        # cancel stops the running executor
        started, marker = tmp_path / "started", tmp_path / "marker"
        doomed = Mission(
            "cancel me", steps=[MissionStep("w", "w", executor=Marker(started, marker, 3))]
        )
        orch.run_async(doomed)
        wait_for(started.exists, 30, "the executor to start")
        marker_due, executor_pid = started_info(started)
        assert orch.cancel(doomed.id)
        assert doomed.status == "cancelled"
        wait_for(lambda: process_gone(executor_pid), 10, "the mission process to be killed")
        wait_for(lambda: time.time() > marker_due + 0.5, 10, "the marker's due time")
        assert not marker.exists()

        # a killed `dask worker` process fails its mission with a clear error
        started2, marker2 = tmp_path / "started2", tmp_path / "marker2"
        lost = Mission(
            "lose my worker", steps=[MissionStep("w", "w", executor=Marker(started2, marker2, 60))]
        )
        handle = orch.run_async(lost)
        wait_for(started2.exists, 30, "the executor to start")
        start = wait_for(lambda: orch.poll_async() and dask_start(lost), 10, "dask_start")
        os.kill(start["pid"], signal.SIGKILL)
        handle.wait(timeout=30)
        assert lost.status == "failed"
        assert "dask worker" in lost.error and "lost" in lost.error, lost.error
        wait_for(lambda: process_gone(started_info(started2)[1]), 10, "the orphan to exit")
    except BaseException:
        print(log_path.read_text()[-4000:])
        raise
    finally:
        orch.cancel_all()
        orch.close()
