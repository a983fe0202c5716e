"""On Dask workers (a task's thread, or its child process) a step sees its mission's trace
context: an instrumented SDK's spans nest under the root span export_spans makes."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from mission_widgets import Mission, MissionStep

pytestmark = pytest.mark.dask


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_an_instrumented_sdks_span_on_a_dask_worker_nests_under_the_root(
    dask_orchestrators, isolation
):
    from support.otel import check_nested_under_root
    from support.otel_steps import sdk_span

    orch = dask_orchestrators(isolation=isolation)
    mission = Mission("calls an instrumented SDK", steps=[MissionStep("sdk", "span", sdk_span)])
    mission = orch.run_async(mission).wait(timeout=90)
    assert mission.status == "succeeded", mission.error
    check_nested_under_root(orch, mission)
