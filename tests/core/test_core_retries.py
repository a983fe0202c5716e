"""Retries, the error context of a retry, error classification, backoff and step timeouts."""

from __future__ import annotations

import threading
import time

import pytest

from mission_widgets import Mission, MissionStep, StepTimeoutError
from mission_widgets.core import classify_error
from mission_widgets.core.mission import retry_delay
from mission_widgets.core.timeouts import call_with_timeout, enable_signal_timeouts


def failing(*errors, result="finally"):
    """An executor raising ``errors`` in turn, then returning ``result``; records contexts."""
    contexts: list[str | None] = []

    def executor(task, session, context):
        contexts.append(context)
        if len(contexts) <= len(errors):
            raise errors[len(contexts) - 1]
        return result

    executor.contexts = contexts
    return executor


def test_step_is_retried_until_it_succeeds():
    executor = failing(RuntimeError("one"), RuntimeError("two"))
    mission = Mission(
        "g", steps=[MissionStep("a", "a", executor=executor, max_retries=2)], backoff_factor=0
    ).run()
    step = mission.get_step("a")
    assert mission.status == "succeeded"
    assert step.status == "done"
    assert step.result == "finally"
    assert step.retry_count == 2
    assert [e["attempt"] for e in step.error_history] == [1, 2]
    assert [e["error"] for e in step.error_history] == ["RuntimeError: one", "RuntimeError: two"]
    assert all(isinstance(e["timestamp"], float) for e in step.error_history)


def test_retries_stop_at_max_retries():
    executor = failing(*[RuntimeError(f"e{i}") for i in range(10)])
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, max_retries=3)],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    step = mission.get_step("a")
    assert len(executor.contexts) == 4  # one attempt + three retries
    assert step.status == "failed"
    assert len(step.error_history) == 4
    assert mission.status == "failed"
    assert "e3" in mission.error


def test_max_retries_zero_means_a_single_attempt():
    executor = failing(RuntimeError("once"))
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, max_retries=0)],
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    assert len(executor.contexts) == 1
    assert mission.status == "failed"


def test_retry_context_lists_all_earlier_errors():
    executor = failing(ValueError("bad column"), KeyError("missing key"))
    Mission(
        "g", steps=[MissionStep("a", "a", executor=executor, max_retries=2)], backoff_factor=0
    ).run()
    first, second, third = executor.contexts
    assert first is None
    assert "PREVIOUS ATTEMPT(S) FAILED" in second
    assert "bad column" in second
    assert "PREVIOUS ATTEMPT(S) FAILED" in third
    assert "bad column" in third
    assert "missing key" in third


def test_on_tool_failure_retry_retries_without_the_errors():
    executor = failing(ValueError("bad column"))
    Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, max_retries=2)],
        stall_policy={"on_tool_failure": "retry"},
        backoff_factor=0,
    ).run()
    assert executor.contexts == [None, None]


def test_on_tool_failure_fail_makes_no_retry():
    executor = failing(ValueError("bad column"))
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, max_retries=5)],
        stall_policy={"on_tool_failure": "fail", "on_max_retries": "skip"},
        backoff_factor=0,
    ).run()
    assert len(executor.contexts) == 1
    assert mission.get_step("a").status == "skipped"


def test_errors_are_classified_in_the_error_history():
    executor = failing(
        TimeoutError("slow"),
        PermissionError("no way"),
        FileNotFoundError("data.csv"),
        ValueError("odd"),
    )
    mission = Mission(
        "g", steps=[MissionStep("a", "a", executor=executor, max_retries=4)], backoff_factor=0
    ).run()
    assert mission.status == "succeeded"
    types = [e["error_type"] for e in mission.get_step("a").error_history]
    assert types == ["timeout", "permission", "missing_resource", "execution_error"]
    failures = [e for e in mission.audit_log if e["event"] == "step_failure"]
    assert [e["error_type"] for e in failures] == types


class _HttpError(Exception):
    """An HTTP client's error that carries the status only: its text names no code."""

    def __init__(self, status_code):
        super().__init__("the server refused the request")
        self.status_code = status_code


class AuthenticationError(Exception):
    pass


class PermissionDeniedError(Exception):
    """Named like the openai SDK's 403 error, with no status and a text that says nothing."""


class NotFoundError(Exception):
    """Named like the openai SDK's 404 error, with no status and a text that says nothing."""


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (StepTimeoutError("x"), "timeout"),
        (RuntimeError("the request timed out"), "timeout"),
        (_HttpError(401), "permission"),
        (_HttpError(403), "permission"),
        (_HttpError(422), "execution_error"),
        (AuthenticationError("key"), "permission"),
        (PermissionDeniedError("no"), "permission"),
        (NotFoundError("no"), "missing_resource"),
        (RuntimeError("the server answered 403"), "permission"),
        (RuntimeError("the server answered 404"), "missing_resource"),
        (RuntimeError("Permission denied: /etc"), "permission"),
        (_HttpError(404), "missing_resource"),
        (KeyError("k"), "missing_resource"),
        (ModuleNotFoundError("nope"), "missing_resource"),
        (RuntimeError("file does not exist"), "missing_resource"),
        (ZeroDivisionError("division by zero"), "execution_error"),
    ],
)
def test_classify_error(error, kind):
    assert classify_error(error) == kind


@pytest.mark.parametrize(
    ("attempt", "factor", "delay"),
    [(1, 1.0, 1.0), (2, 1.0, 2.0), (3, 1.0, 4.0), (5, 1.0, 16.0), (6, 1.0, 30.0), (50, 1.0, 30.0)]
    + [(3, 0.5, 2.0), (7, 0.5, 15.0), (4, 0.0, 0.0)],
)
def test_retry_delay(attempt, factor, delay):
    """Concrete delays (1, 2, 4, ... s, capped at 30 s, times the factor), never the formula
    recomputed."""
    assert retry_delay(attempt, factor) == delay


def test_retry_waits_the_backoff_and_reports_it():
    executor = failing(RuntimeError("one"), RuntimeError("two"))
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, max_retries=2)],
        backoff_factor=0.05,
    ).run()
    assert mission.status == "succeeded"
    retries = [e for e in mission.audit_log if e["event"] == "retry_start"]
    assert [e["delay_secs"] for e in retries] == [0.05, 0.1]
    assert [e["attempt"] for e in retries] == [2, 3]
    starts = [e["timestamp"] for e in mission.audit_log if e["event"] == "step_start"]
    assert starts[1] - starts[0] >= 0.05
    assert starts[2] - starts[1] >= 0.1


def test_backoff_factor_zero_does_not_wait():
    executor = failing(*[RuntimeError("x")] * 5)
    started = time.monotonic()
    Mission(
        "g", steps=[MissionStep("a", "a", executor=executor, max_retries=5)], backoff_factor=0
    ).run()
    assert time.monotonic() - started < 2.0


# -- timeouts --------------------------------------------------------------------------------


def hanging(release: threading.Event, finish_on_attempt: int | None = None):
    """An executor that blocks on ``release`` (a test fixture), except on one attempt."""
    contexts: list[str | None] = []

    def executor(task, session, context):
        contexts.append(context)
        if finish_on_attempt is not None and len(contexts) == finish_on_attempt:
            return "made it"
        release.wait(30)
        return "released"

    executor.contexts = contexts
    return executor


def test_an_overrunning_attempt_is_a_timeout_failure(release):
    executor = hanging(release, finish_on_attempt=2)
    started = time.monotonic()
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=executor, timeout_secs=0.2, max_retries=1)],
        backoff_factor=0,
    ).run()
    assert time.monotonic() - started < 5
    step = mission.get_step("a")
    assert mission.status == "succeeded"
    assert step.result == "made it"
    (error,) = step.error_history
    assert error["error_type"] == "timeout"
    assert "timed out after 0.2 s" in error["error"]
    assert "timed out" in executor.contexts[1]


def test_attempt_within_its_timeout_returns_its_result():
    mission = Mission(
        "g",
        steps=[MissionStep("a", "a", executor=lambda t, s, c: "quick", timeout_secs=5)],
    ).run()
    assert mission.get_step("a").result == "quick"
    assert mission.get_step("a").error_history == []


def test_call_with_timeout_passes_errors_and_results_through():
    assert call_with_timeout(lambda: 7, 5) == 7
    assert call_with_timeout(lambda: 8, None) == 8
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 / 0, 5)


def test_timeout_stops_a_pure_python_loop():
    stopped = threading.Event()

    def spin():
        try:
            while True:
                pass
        finally:
            stopped.set()

    with pytest.raises(StepTimeoutError):
        call_with_timeout(spin, 0.1)
    assert stopped.wait(5), "the overrunning attempt kept running"


def test_signal_timeouts_interrupt_a_blocking_call_in_the_main_thread():
    enable_signal_timeouts(True)
    try:
        started = time.monotonic()
        with pytest.raises(StepTimeoutError):
            call_with_timeout(lambda: time.sleep(10), 0.2)
        assert time.monotonic() - started < 5
    finally:
        enable_signal_timeouts(False)
