"""The panel in a real ipykernel, executed by nbclient: the kernel answers while missions run.

The notebook starts subprocess missions that wait for a marker file, shows ``orch.panel()``
(auto-refreshing on its own thread), then the test executes more cells *while* the missions
run, releases them from a later cell and checks they succeeded. Round-trip times are only
measured by ``bench/bench_kernel.py``; here only behaviour is asserted.
"""

from __future__ import annotations

import ast
import sys
import time

import nbformat
import pytest
from support.kernel import KernelSession, text_output

from mission_widgets import MissionOrchestrator

pytestmark = pytest.mark.kernel


@pytest.fixture
def mission_store(tmp_path):
    """A store directory for the notebook's orchestrator; whatever still runs in it at the
    end (a cell failed, the kernel died: workers outlive kernels by design) is cancelled
    through a reattached orchestrator."""
    store = tmp_path / "store"
    yield store
    if store.exists():
        orch = MissionOrchestrator(store=store)
        try:
            orch.cancel_all()
        finally:
            orch.close()


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

SETUP = """\
import os, pathlib, sys, time
from mission_widgets import Mission, MissionOrchestrator, MissionStep, report_progress

STORE = {store!r}
MARKER = {marker!r}

def wait_for_marker(task, session, context):
    report_progress(0.5, "waiting for the marker file")
    while not os.path.exists(MARKER):
        time.sleep(0.05)
    return "released"

orch = MissionOrchestrator(max_concurrent=3, store=STORE)
handles = [
    orch.run_async(
        Mission(f"kernel mission {{i}}",
                steps=[MissionStep("wait", "wait for the marker", executor=wait_for_marker)])
    )
    for i in range(3)
]
sys.executable
"""

SHOW_PANEL = """\
panel = orch.panel(refresh_interval=0.25)
panel
"""


def until(session: KernelSession, source: str, predicate, what: str, timeout: float = 30):
    """Execute ``source`` as a new cell again and again until ``predicate(value)`` holds.

    Every attempt is a full kernel round trip, so this also shows the kernel answering.
    Returns the evaluated text/plain of the last attempt.
    """
    deadline = time.monotonic() + timeout
    while True:
        cell, _ = session.run_source(source)
        value = ast.literal_eval(text_output(cell))
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {value!r}")
        time.sleep(0.05)  # a poll interval: thousands of cells would fill IPython's output cache


def test_cells_run_while_missions_run_and_the_panel_refreshes(tmp_path, mission_store):
    marker = tmp_path / "release-the-missions"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP.format(store=str(mission_store), marker=str(marker))),
        nbformat.v4.new_code_cell(SHOW_PANEL),
    ]
    session = KernelSession(nb, tmp_path)
    with session.started():
        session.run(0)
        assert ast.literal_eval(text_output(nb.cells[0])) == sys.executable  # the venv's python

        session.run(1)
        widget, snapshot = panel_outputs(nb.cells[1])
        assert widget["data"][WIDGET_VIEW]["model_id"]
        static = snapshot["data"]["text/html"]
        assert "mission-widgets-static" in static and "<table" in static
        assert all(f"kernel mission {i}" in static for i in range(3))
        assert "0/3 [" in static

        # The missions run elsewhere and wait for the marker: cells still come back, and
        # the panel draws their reported progress meanwhile.
        cell, _ = session.run_source("len(orch.running), panel.refreshing, os.path.exists(MARKER)")
        assert ast.literal_eval(text_output(cell)) == (3, True, False)
        for _ in range(5):
            cell, _ = session.run_source("1 + 1")
            assert text_output(cell) == "2"
        bars = until(
            session,
            "[(r['progress'], r['status'], r['note']) for r in panel.rows]",
            lambda bars: bars == [(0.5, "running", "waiting for the marker file")] * 3,
            "the refresh thread to draw the reported progress",
        )
        assert bars == [(0.5, "running", "waiting for the marker file")] * 3
        cell, _ = session.run_source("len(orch.running), all(not h.done() for h in handles)")
        assert ast.literal_eval(text_output(cell)) == (3, True)

        # A later cell releases them; the next ones see them succeed, in the panel too.
        session.run_source("pathlib.Path(MARKER).touch()")
        cell, _ = session.run_source("[str(h.wait(timeout=60).status) for h in handles]")
        assert ast.literal_eval(text_output(cell)) == ["succeeded"] * 3
        until(
            session,
            "[(r['progress'], r['status']) for r in panel.rows]",
            lambda bars: bars == [(1.0, "succeeded")] * 3,
            "the refresh thread to draw success",
        )
        cell, _ = session.run_source("orch.counts()['succeeded'], len(orch.running)")
        assert ast.literal_eval(text_output(cell)) == (3, 0)
        session.run_source("panel.close(); orch.close()")

    # The saved notebook shows the missions as they ended: the snapshot beside the widget
    # view was rewritten (through its display id) while they ran, and nbconvert's HTML of
    # the notebook shows that final state.
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)
    nbformat.validate(saved)
    widget, snapshot = panel_outputs(saved.cells[1])
    state = saved.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert widget["data"][WIDGET_VIEW]["model_id"] in state  # the panel's model is saved too
    final = snapshot["data"]["text/html"]
    assert "3/3 [" in final and " total, " in final
    assert final.count("succeeded</b>") == 3
    assert "running</b>" not in final

    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_notebook_node(saved)
    assert "3/3 [" in page
    assert all(f"kernel mission {i}" in page for i in range(3))


def panel_outputs(cell):
    """The panel cell's two outputs: the live widget view, then the static snapshot."""
    displays = [o for o in cell.outputs if o["output_type"] == "display_data"]
    [widget] = [o for o in displays if WIDGET_VIEW in o["data"]]
    [snapshot] = [o for o in displays if "text/html" in o["data"]]
    assert "text/html" not in widget["data"]  # a viewer without widgets shows the snapshot
    return widget, snapshot
