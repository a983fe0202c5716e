"""The panel's status chips count each status, and a chip shows exactly its missions: checked
on a mix where no status's count equals the total (a chip that showed the total, or a filter
that let everything through, would pass a test of one status)."""

from __future__ import annotations

from support.widget_tasks import boom, quick

from mission_widgets import Mission, MissionStep


def mission(goal: str, executor) -> Mission:
    return Mission(
        goal,
        steps=[MissionStep("only", "the step", executor=executor, max_retries=0)],
        stall_policy={"on_max_retries": "abort"},
    )


def test_chips_count_each_status_and_a_chip_shows_only_its_missions(orchestrators, panels):
    orch = orchestrators(backend="thread")
    good = [mission(f"fine {i}", quick) for i in range(3)]
    bad = [mission(f"broken {i}", boom) for i in range(2)]
    for each in good + bad:
        orch.submit(each)
    done = orch.run_all()
    assert sorted(m.status for m in done) == ["failed"] * 2 + ["succeeded"] * 3

    panel = orch.panel(auto_refresh=False)
    panels.append(panel)
    chips = {chip["status"]: chip["n"] for chip in panel.view["filters"]}
    assert chips["all"] == 5
    assert chips["succeeded"] == 3
    assert chips["failed"] == 2

    panel.set_filter("succeeded")
    assert sorted(r["id"] for r in panel.view["rows"]) == sorted(m.id for m in good)
    panel.set_filter("failed")
    listed = {r["id"] for r in panel.view["rows"]} | {r["id"] for r in panel.view["pinned"]}
    assert listed == {m.id for m in bad}
