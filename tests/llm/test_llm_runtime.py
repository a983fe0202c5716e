"""LLM missions through the orchestrator: a thread in the kernel and a subprocess worker,
token totals in status(), and the API key never written anywhere under the store."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from mission_widgets import Mission, MissionOrchestrator, MissionStep
from mission_widgets.testing import Reply
from mission_widgets.testing.fake_llm import FAKE_LABEL

GOAL = "Explain the tides to a ten-year-old"
WAIT = 60


def status_row(orch: MissionOrchestrator, mission_id: str) -> dict:
    frame = orch.status()
    return frame[frame["id"] == mission_id].iloc[0].to_dict()


def test_thread_backend_sums_tokens_into_status(fake_llm, make_model, orchestrators, tmp_path):
    server = fake_llm(usage=(11, 7))
    model = make_model(server)
    orch = orchestrators(backend="thread", store=tmp_path / "store", model=model)
    handle = orch.run_async(Mission(GOAL, backoff_factor=0))
    mission = handle.wait(timeout=WAIT)

    assert mission.status == "succeeded", mission.error
    row = status_row(orch, mission.id)
    assert row["model"] == "openai:fake-model"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (4 * 11, 4 * 7)
    assert row["n_steps"] == 3 and row["n_done"] == 3


def test_subprocess_worker_gets_url_and_key_from_its_environment(
    fake_llm, orchestrators, tmp_path, monkeypatch
):
    server = fake_llm(usage=(5, 3))
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-worker-env-key")
    orch = orchestrators(backend="subprocess", store=tmp_path / "store")
    handle = orch.run_async(Mission(GOAL, model="openai:fake-model", backoff_factor=0))
    assert handle.pid != os.getpid()
    mission = handle.wait(timeout=WAIT)

    assert mission.status == "succeeded", (mission.error, orch.log_tail(mission.id))
    assert [s.id for s in mission.steps] == ["research", "outline", "write"]
    assert all(s.status == "done" and FAKE_LABEL in s.result for s in mission.steps)
    calls = [e for e in mission.audit_log if e["event"] == "model_call"]
    assert len(calls) == 4 and all(c["model"] == "openai:fake-model" for c in calls)
    row = status_row(orch, mission.id)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (20, 12)
    assert row["model"] == "openai:fake-model"
    requests = server.chat_requests
    assert len(requests) == 4
    assert all(r.authorization == "Bearer sk-worker-env-key" for r in requests)


def test_subprocess_worker_classifies_a_timeout(fake_llm, make_model, orchestrators, tmp_path):
    server = fake_llm(Reply.slow(30))
    model = make_model(server, timeout=0.5, max_retries=0)
    orch = orchestrators(backend="subprocess", store=tmp_path / "store", model=model)
    mission = Mission(
        GOAL,
        steps=[MissionStep("answer", "Answer the question", max_retries=0)],
        stall_policy={"on_step_timeout": "abort"},
        backoff_factor=0,
    )
    mission = orch.run_async(mission).wait(timeout=WAIT)

    assert mission.status == "failed"
    step = mission.get_step("answer")
    assert step.error_history[0]["error_type"] == "timeout"
    assert step.error_history[0]["error"].startswith("APITimeoutError")


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_api_key_never_reaches_the_store(fake_llm, make_model, orchestrators, tmp_path):
    key = "sk-mwleak-" + secrets.token_hex(20)

    def deny_some(request):
        if "[deny]" in request.prompt and not request.is_planning:
            return Reply.error(401, "Incorrect API key provided")
        return None

    server = fake_llm(handler=deny_some, usage=(3, 2))
    model = make_model(server, api_key=key)
    store = tmp_path / "store"
    orch = orchestrators(backend="subprocess", store=store, model=model)
    good = orch.run_async(Mission(GOAL, backoff_factor=0))
    denied = orch.run_async(
        Mission(
            "A goal that is refused [deny]",
            steps=[MissionStep("only", "Do the refused thing", max_retries=1)],
            backoff_factor=0,
        )
    )
    good_mission = good.wait(timeout=WAIT)
    denied_mission = denied.wait(timeout=WAIT)

    assert good_mission.status == "succeeded", good_mission.error
    assert denied_mission.get_step("only").error_history[0]["error_type"] == "permission"
    # The workers really used the key: it came through their environment.
    assert server.chat_requests and all(
        r.authorization == f"Bearer {key}" for r in server.chat_requests
    )

    files = _files_under(store)
    names = {p.name for p in files}
    assert {"store.sqlite", f"{good_mission.id}.pkl", f"{good_mission.id}.json"} <= names
    assert f"{good_mission.id}.log" in names
    for path in files:
        assert key.encode() not in path.read_bytes(), f"the API key is in {path}"
    # Nor in what the kernel shows: mirrors, events, status(), reprs.
    for mission in (good_mission, denied_mission):
        assert key not in json.dumps(mission.audit_log, default=repr)
        assert key not in json.dumps(mission.to_dict(include_executors=False), default=repr)
        assert key not in repr(mission)
    assert key not in orch.status().to_string()
    assert key not in repr(orch) and key not in repr(model)
