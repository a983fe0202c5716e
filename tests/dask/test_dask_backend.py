"""The Dask backend on a LocalCluster (two worker processes, one thread each, 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import time

import pytest
from distributed import Client, LocalCluster
from support.dask_tasks import (
    FlakyOnce,
    Marker,
    Sleeper,
    Steady,
    dask_start,
    process_gone,
    started_info,
    topic_events,
    wait_for,
)

from mission_widgets import Mission, MissionOrchestrator, MissionStep

pytestmark = [pytest.mark.dask, pytest.mark.slow]


def two_steps(goal: str) -> Mission:
    return Mission(
        goal,
        steps=[
            MissionStep("a", "first", executor=Steady()),
            MissionStep("b", "second", executor=Steady(), depends_on=["a"]),
        ],
    )


def test_run_all_mirrors_events_status_and_logs(dask_orchestrators, client):
    orch = dask_orchestrators(max_concurrent=2)
    missions = [two_steps(f"goal {i}") for i in range(3)]
    for mission in missions:
        orch.submit(mission)
    assert orch.run_all() == missions

    for mission in missions:
        assert mission.status == "succeeded", mission.error
        assert [s.result for s in mission.steps] == ["FIRST", "SECOND"]
        names = [e["event"] for e in mission.audit_log]
        assert names[:3] == ["dask_submit", "dask_start", "mission_start"]
        assert names[-1] == "mission_done"
        assert names.count("progress") >= 2  # throttled, but the last tick always goes
        assert "done: first" in orch.log_tail(mission.id)  # stdout came back, no shared disk
    # The scheduler's log holds the same events (that is what a reattach replays).
    assert [e["event"] for e in topic_events(client, orch.backend.topic, missions[0].id)][-1] == (
        "mission_done"
    )

    frame = orch.status()
    assert list(frame["id"]) == [m.id for m in missions]
    assert set(frame["status"]) == {"succeeded"}
    assert set(frame["backend"]) == {"dask"}
    assert list(frame["n_done"]) == [2, 2, 2]
    assert frame["pid"].notna().all()

    # The window held: never more than max_concurrent missions between start and end.
    spans = []
    for mission in missions:
        times = {e["event"]: e["timestamp"] for e in mission.audit_log}
        spans.append((times["dask_start"], times["mission_done"]))
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_step_timeouts_and_retries_work_on_the_worker(dask_orchestrators, isolation):
    orch = dask_orchestrators(isolation=isolation)
    # In a mission process SIGALRM stops even one long C call; in a Dask thread the
    # attempt is abandoned (and interrupted between bytecodes), see core.timeouts.
    chunk = None if isolation == "process" else 0.05
    mission = Mission(
        "timeouts and retries",
        steps=[
            MissionStep(
                "slow", "too slow", executor=Sleeper(30, chunk), timeout_secs=0.5, max_retries=0
            ),
            MissionStep("flaky", "flaky once", executor=FlakyOnce(), max_retries=1),
        ],
        backoff_factor=0,
    )
    started = time.monotonic()
    orch.run_async(mission).wait(timeout=30)
    assert time.monotonic() - started < 20
    assert mission.status == "succeeded"  # the timed-out step is skipped (skip_or_replan)
    slow, flaky = mission.steps
    assert slow.status == "skipped"
    assert slow.error_history[0]["error_type"] == "timeout"
    assert "timed out after 0.5 s" in slow.error_history[0]["error"]
    assert flaky.status == "done" and flaky.retry_count == 1
    assert flaky.result == "ok after 2 attempts"
    names = [e["event"] for e in mission.audit_log]
    assert "retry_start" in names and "retry_success" in names


def test_killed_worker_fails_the_mission_and_it_is_not_rerun(dask_orchestrators, client, tmp_path):
    orch = dask_orchestrators(max_concurrent=1)
    started, marker = tmp_path / "started", tmp_path / "marker"
    mission = Mission(
        "doomed", steps=[MissionStep("wait", "wait", executor=Marker(started, marker, 60))]
    )
    handle = orch.run_async(mission)
    wait_for(started.exists, 30, "the executor to start")
    start = wait_for(lambda: orch.poll_async() and dask_start(mission), 10, "dask_start")
    _, executor_pid = started_info(started)
    assert executor_pid == start["child_pid"]
    assert orch.store.row(mission.id)["pid"] == start["pid"]

    def started_on_the_scheduler():
        return [
            e
            for e in topic_events(client, orch.backend.topic, mission.id)
            if e["event"] == "mission_start"
        ]

    # The worker sends events to the scheduler after the executor may already run (in
    # batches, on its own loop): kill it only once the one start counted below has left it.
    wait_for(started_on_the_scheduler, 30, "the mission_start to reach the scheduler")
    os.kill(start["pid"], signal.SIGKILL)  # the Dask worker process, mid-mission

    handle.wait(timeout=30)
    assert mission.status == "failed"
    assert "dask worker" in mission.error and "lost" in mission.error, mission.error
    # The mission's process noticed its worker was gone and stopped by itself.
    wait_for(lambda: process_gone(executor_pid), 10, "the orphaned mission process to exit")
    # The scheduler did re-run the task; it refused instead of running the mission again.
    refused = wait_for(
        lambda: [
            e
            for e in topic_events(client, orch.backend.topic, mission.id)
            if e["event"] == "mission_done"
            and "not re-run after a lost worker" in (e.get("error_message") or "")
        ],
        30,
        "the re-run task to refuse",
    )
    assert refused
    assert len(started_on_the_scheduler()) == 1
    assert orch.status().set_index("id").loc[mission.id, "status"] == "failed"


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_cancel_really_stops_a_running_mission(dask_orchestrators, client, tmp_path, isolation):
    orch = dask_orchestrators(max_concurrent=1, isolation=isolation)
    started, marker = tmp_path / "started", tmp_path / "marker"
    mission = Mission(
        "to cancel", steps=[MissionStep("wait", "wait", executor=Marker(started, marker, 3))]
    )
    handle = orch.run_async(mission)
    wait_for(started.exists, 30, "the executor to start")
    marker_due, executor_pid = started_info(started)

    assert orch.cancel(mission.id) is True
    assert mission.status == "cancelled"
    assert mission.error == "cancelled by user"
    assert handle.done()
    if isolation == "process":
        wait_for(lambda: process_gone(executor_pid), 10, "the mission process to be killed")
    # The task let go of its Dask thread.
    key = next(e["key"] for e in mission.audit_log if e["event"] == "dask_submit")
    wait_for(
        lambda: all(key not in keys for keys in client.processing().values()),
        10,
        "the task to leave its worker",
    )
    # Past the moment the executor would have written its marker: it never did.
    wait_for(lambda: time.time() > marker_due + 0.5, 10, "the marker's due time")
    assert not marker.exists()
    assert orch.cancel(mission.id) is False  # already finished


def test_reconcile_flags_a_mission_whose_heartbeat_stopped(dask_orchestrators, tmp_path):
    orch = dask_orchestrators(heartbeat_secs=0.2, heartbeat_timeout_secs=1.0)
    started, marker = tmp_path / "started", tmp_path / "marker"
    mission = Mission(
        "will freeze", steps=[MissionStep("wait", "wait", executor=Marker(started, marker, 30))]
    )
    orch.run_async(mission)
    wait_for(started.exists, 30, "the executor to start")
    _, executor_pid = started_info(started)
    first = wait_for(lambda: orch.store.row(mission.id)["last_heartbeat"], 5, "a heartbeat")
    wait_for(lambda: orch.store.row(mission.id)["last_heartbeat"] > first, 5, "heartbeats to flow")
    assert orch.reconcile(stall_threshold_secs=600) == []

    os.kill(executor_pid, signal.SIGSTOP)  # frozen: no heartbeat, no progress
    wait_for(lambda: mission.id in orch.reconcile(stall_threshold_secs=600), 15, "a stall flag")
    assert (mission.status, mission.stall_reason) == ("running", "no_heartbeat")

    assert mission.id in orch.reconcile(stall_threshold_secs=600, kill=True)
    assert mission.status == "failed"
    assert "heartbeat lost" in mission.error and mission.error.endswith("killed by reconcile()")
    wait_for(lambda: process_gone(executor_pid), 10, "the frozen process to be killed")
    assert mission not in orch.running


def test_history_survives_the_client_going_away(cluster, tmp_path):
    store = tmp_path / "store"
    paths = {name: tmp_path / name for name in ("s1", "m1", "s2", "m2")}
    ended = Mission(  # ends while no kernel listens
        "ends while away",
        steps=[
            MissionStep("wait", "wait", executor=Marker(paths["s1"], paths["m1"], 0.5)),
            MissionStep("then", "then", executor=Steady(), depends_on=["wait"]),
        ],
    )
    running = Mission(  # still runs when the new kernel attaches
        "runs on", steps=[MissionStep("wait", "wait", executor=Marker(paths["s2"], paths["m2"], 4))]
    )
    with Client(cluster, set_as_default=False) as first:
        orch = MissionOrchestrator(backend="dask", client=first, store=store, heartbeat_secs=0.3)
        namespace = orch.backend.namespace
        orch.run_async(ended)
        orch.run_async(running)
        wait_for(lambda: paths["s1"].exists() and paths["s2"].exists(), 30, "both to start")
        orch.close()
    # The kernel's client is gone; the missions go on (fire-and-forget).
    with Client(cluster, set_as_default=False) as second:
        wait_for(
            lambda: [
                e for e in topic_events(second, namespace, ended.id) if e["event"] == "mission_done"
            ],
            30,
            "the first mission to end on the cluster",
        )
        again = MissionOrchestrator(backend="dask", client=second, store=store)
        elsewhere = MissionOrchestrator(
            backend="dask", client=second, store=tmp_path / "other", namespace=namespace
        )
        try:
            assert again.get(running.id) in again.running  # reattached, still running
            for orch in (again, elsewhere):
                finished = orch.wait(running.id, timeout=30)
                assert finished.status == "succeeded", finished.error
                found = orch.get(ended.id)
                assert found.status == "succeeded", found.error
                assert [s.status for s in found.steps] == ["done", "done"]
                assert found.steps[1].result == "THEN"
                for mission_id in (ended.id, running.id):
                    events = orch.store.events_for(mission_id)
                    uids = [e["uid"] for e in events if "uid" in e]
                    assert len(uids) == len(set(uids))  # replayed once, never twice
                    names = [e["event"] for e in events]
                    assert names.count("mission_start") == 1 and names[-1] == "mission_done"
        finally:
            again.close()
            elsewhere.close()


def test_a_worker_that_leaves_the_cluster_is_noticed_when_nothing_reruns_the_task(
    orchestrators, tmp_path
):
    """The only worker of a cluster leaves mid-mission (retired, with its nanny): no worker is
    left to run the task again, so no re-run writes an end; only the orchestrator's look at
    the scheduler can tell. The mission fails, naming the worker that left."""
    with (
        LocalCluster(
            n_workers=1,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        orch = orchestrators(1, backend="dask", client=client, heartbeat_secs=0.3)
        started, marker = tmp_path / "started", tmp_path / "marker"
        mission = Mission(
            "left behind", steps=[MissionStep("w", "w", executor=Marker(started, marker, 120))]
        )
        handle = orch.run_async(mission)
        wait_for(started.exists, 60, "the executor to start")
        start = wait_for(lambda: orch.poll_async() and dask_start(mission), 30, "dask_start")
        client.retire_workers([start["worker"]], close_workers=True, remove=True)
        handle.wait(timeout=60)
        assert mission.status == "failed"
        assert f"dask worker {start['worker']} was lost" in mission.error, mission.error
        assert "it left the cluster" in mission.error, mission.error
        wait_for(lambda: process_gone(started_info(started)[1]), 30, "the orphan to exit")
        orchestrators.cleanup()  # before the cluster goes


def test_panel_draws_rows_of_dask_missions(dask_orchestrators):
    from mission_widgets.widgets import MissionPanel  # a panel that cannot import fails here

    orch = dask_orchestrators(max_concurrent=2)
    missions = [two_steps(f"panel {i}") for i in range(2)]
    for mission in missions:
        orch.submit(mission)
    orch.run_all()
    panel = MissionPanel(orch, auto_refresh=False)
    try:
        panel.redraw(force=True)
        rows = panel.rows
        assert {row["id"] for row in rows} == {m.id for m in missions}
        for row in rows:
            assert row["status"] == "succeeded"
            assert row["progress"] == 1.0
            assert row["steps"] == "2/2"
    finally:
        panel.close()
