"""Cost of LLM missions: each model call priced in its worker, summed per mission in
status() (NaN when a price is unknown), totalled by ``mission-widgets status``."""

from __future__ import annotations

import math

import pytest
from support.cli import run_cli

from mission_widgets import Mission, MissionStep, register_price

GOAL = "Explain the tides to a ten-year-old"
WAIT = 60
USAGE = (11, 7)  # per call; a default mission makes 4 calls (plan + 3 steps)


pytestmark = pytest.mark.usefixtures("fresh_prices")


def row_of(orch, mission_id):
    frame = orch.status()
    return frame[frame["id"] == mission_id].iloc[0].to_dict()


def test_a_priced_model_costs_its_calls_per_mission(fake_llm, make_model, orchestrators, tmp_path):
    server = fake_llm(usage=USAGE)
    orch = orchestrators(
        backend="thread", store=tmp_path / "store", model=make_model(server, name="gpt-4o-mini")
    )
    mission = orch.run_async(Mission(GOAL, backoff_factor=0)).wait(timeout=WAIT)

    assert mission.status == "succeeded", mission.error
    per_call = (USAGE[0] * 0.15 + USAGE[1] * 0.60) / 1e6
    calls = [e for e in mission.audit_log if e["event"] == "model_call"]
    assert len(calls) == 4
    assert all(c["cost_usd"] == pytest.approx(per_call) for c in calls)
    frame = orch.status()
    assert frame["cost_usd"].dtype == "float64"
    assert row_of(orch, mission.id)["cost_usd"] == pytest.approx(4 * per_call)


def test_an_unknown_model_costs_nan_until_its_price_is_registered_in_the_kernel(
    fake_llm, make_model, orchestrators, tmp_path
):
    server = fake_llm(usage=USAGE)
    orch = orchestrators(
        backend="subprocess", store=tmp_path / "store", model=make_model(server, name="house-llm")
    )
    unpriced = orch.run_async(Mission(GOAL, backoff_factor=0)).wait(timeout=WAIT)
    assert unpriced.status == "succeeded", (unpriced.error, orch.log_tail(unpriced.id))
    assert math.isnan(row_of(orch, unpriced.id)["cost_usd"])

    # registered here, in the kernel: the price travels to the next mission's worker
    register_price("house-llm", input_per_mtok=1000, output_per_mtok=2000)
    priced = orch.run_async(Mission(GOAL, backoff_factor=0)).wait(timeout=WAIT)
    assert priced.status == "succeeded", (priced.error, orch.log_tail(priced.id))
    expected = 4 * (USAGE[0] * 1000 + USAGE[1] * 2000) / 1e6
    assert row_of(orch, priced.id)["cost_usd"] == pytest.approx(expected)
    assert math.isnan(row_of(orch, unpriced.id)["cost_usd"])

    out = run_cli(tmp_path, "status", "--store", tmp_path / "store")
    assert out.returncode == 0, out.stderr
    assert f"Cost: ${expected:,.4f} in total, plus 1 mission of unknown cost" in out.stdout


def test_missions_without_model_calls_cost_nothing(orchestrators, tmp_path):
    orch = orchestrators(backend="thread", store=tmp_path / "store")
    mission = Mission(GOAL, steps=[MissionStep("a", "A", executor=lambda *a: 1)])
    mission = orch.run_async(mission).wait(timeout=WAIT)
    assert mission.status == "succeeded"
    assert row_of(orch, mission.id)["cost_usd"] == 0.0
    out = run_cli(tmp_path, "status", "--store", tmp_path / "store")
    assert "Cost: $0 in total\n" in out.stdout
