"""The offline demo model's answer to ``explain``: an analysis built from the step's error
history (which step, which error, a root-cause guess, what a retry would change, whether to
skip), labelled as simulated. The question is the one ``orch.explain`` asks."""

from __future__ import annotations

import pytest

from mission_widgets.core.models import SIMULATED_LABEL, DemoModel
from mission_widgets.orchestrator.deciding import explanation_prompt


def failures(step_id, *errors, error_type="execution_error"):
    return [
        {
            "event": "step_failure",
            "step_id": step_id,
            "attempt": attempt,
            "error_type": error_type,
            "error_message": error,
        }
        for attempt, error in enumerate(errors, 1)
    ]


def explain(step_id, events, goal="Export the figures"):
    events = [{"event": "mission_start", "goal": goal}, *events]
    return DemoModel(step_seconds=0).generate(explanation_prompt(None, step_id, events))


def test_the_explanation_names_the_step_and_its_error_and_is_labelled_simulated():
    down = "ConnectionError: the export service is down"
    text = explain("export", failures("export", down, down))
    assert text.startswith(SIMULATED_LABEL)
    assert "step 'export'" in text
    assert f"all 2 attempts failed the same way, with {down}" in text
    assert "Root cause (a guess): a service the step talks to is down" in text
    assert "What a retry would change: nothing while the service is down" in text
    assert "Skip the step?" in text
    assert "-- done" not in text  # not the answer to a step


def test_other_steps_failures_are_not_counted():
    events = failures("export", "ValueError: bad row 7") + failures("other", "KeyError: 'x'")
    text = explain("export", events)
    assert "its only attempt failed with ValueError: bad row 7" in text
    assert "KeyError" not in text
    assert "the step's own code raised ValueError" in text


@pytest.mark.parametrize(
    ("error_type", "error", "cause", "retry"),
    [
        ("timeout", "StepTimeoutError: step took more than 5 s", "ran out of time", "longer"),
        ("permission", "PermissionError: HTTP 401", "credential", "until the key"),
        ("missing_resource", "FileNotFoundError: data.csv", "does not exist", "resource exists"),
    ],
)
def test_the_guess_follows_the_kind_of_error(error_type, error, cause, retry):
    text = explain("fetch", failures("fetch", error, error_type=error_type))
    assert cause in text.split("Root cause")[1].split("\n")[0]
    assert retry in text.split("What a retry would change")[1].split("\n")[0]


def test_the_demo_models_own_errors_are_recognised():
    transient = explain("gather", failures("gather", "ConnectionError: simulated transient error"))
    assert "a retry very likely succeeds" in transient
    failing = explain(
        "draft",
        failures("draft", "RuntimeError: simulated failure (the goal asks for [fail])"),
        goal="Draft a quiz [fail]",
    )
    assert "fails the same way while the goal asks for [fail]" in failing


def test_different_errors_are_told_apart_from_a_repeating_one():
    text = explain("export", failures("export", "OSError: disk full", "ValueError: bad row"))
    assert "2 attempts failed in 2 different ways, the last with ValueError: bad row" in text
    assert "not bad luck" not in text


def test_a_step_with_no_recorded_failure_says_so():
    assert "no failed attempt is recorded" in explain("export", [])
