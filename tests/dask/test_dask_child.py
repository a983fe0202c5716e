"""The mission process (``runtime/dask_child.py``) a Dask task starts: one JSON record a line
on a pipe, heartbeats, no heavy imports, and it stops once nobody reads its pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.dask_tasks import HeavyModules, Sleeper, wait_for

from mission_widgets import Mission, MissionStep
from mission_widgets.runtime.payload import build_payload, dumps_payload, write_payload

pytestmark = pytest.mark.dask


def _start(tmp_path, mission: Mission) -> tuple[subprocess.Popen, int]:
    path = tmp_path / f"{mission.id}.pkl"
    write_payload(path, dumps_payload(build_payload(mission)))
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mission_widgets.runtime.dask_child",
            str(write_fd),
            str(path),
            "0.1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    return proc, read_fd


def test_dask_child_writes_records_and_imports_no_dask(tmp_path):
    mission = Mission("stream", steps=[MissionStep("look", "look around", executor=HeavyModules())])
    proc, read_fd = _start(tmp_path, mission)
    with os.fdopen(read_fd, encoding="utf-8") as pipe:
        records = [json.loads(line) for line in pipe]
    assert proc.wait(timeout=30) == 0
    events = [r for r in records if r["kind"] == "event"]
    names = [r["event"]["event"] for r in events]
    assert names[0] == "mission_start" and names[-1] == "mission_done"
    done = events[-1]
    assert done["summary"]["status"] == "succeeded" and done["summary"]["n_done"] == 1
    assert done["final"]["steps"][0]["result"] == []  # no dask, pandas, ipywidgets, IPython
    assert all(r["final"] is None for r in events[:-1])


def test_dask_child_stops_when_its_reader_is_gone(tmp_path):
    mission = Mission("orphan", steps=[MissionStep("wait", "wait", executor=Sleeper(60, 0.05))])
    proc, read_fd = _start(tmp_path, mission)
    with os.fdopen(read_fd, encoding="utf-8") as pipe:
        assert json.loads(pipe.readline())  # it runs
    # The reading end is closed (its Dask worker died): the next heartbeat finds out.
    wait_for(lambda: proc.poll() is not None, 10, "the orphaned worker to exit")
    assert proc.returncode == 3
