"""What the offline demo model answers when asked to explain a step's failures.

``orch.explain(id)`` asks a mission's model to analyse the step it waits on (the question of
:func:`mission_widgets.orchestrator.deciding.explanation_prompt`: the goal, the step and its
error history). A real model writes its own analysis; the demo model builds a plausible one
from that history, by rules: which error (a service down, a timeout, a missing permission or
resource, the demo's own simulated errors, a bug), whether it repeats, what a retry would
change and whether to skip. Every answer is labelled as simulated.
"""

from __future__ import annotations

import re

#: ``- attempt 2: execution_error: ConnectionError: the export service is down``
_FAILURE = re.compile(r"^- attempt (?P<attempt>[^:]+): (?P<type>[\w-]+): (?P<message>.*)$")
_STEP = re.compile(r"^Step (?P<id>[^:]+):\s*(?P<description>.*)$")
_NETWORK = re.compile(
    r"connection|unreachable|unavailable|refused|\b50[234]\b|service is down|network|dns",
    re.IGNORECASE,
)


class Failure:
    """One failed attempt as the question lists it."""

    def __init__(self, attempt: str, error_type: str, message: str) -> None:
        self.attempt = attempt
        self.error_type = error_type
        self.message = message.strip()

    @property
    def exception(self) -> str:
        """The exception's name (``ConnectionError``), or the whole message when none."""
        name, sep, _ = self.message.partition(":")
        return name if sep and name.isidentifier() else self.message


def read_question(prompt: str) -> tuple[str, str, str, list[Failure]]:
    """The goal, step id, step description and failures a question names."""
    goal, step_id, description, failures = "", "", "", []
    for line in prompt.splitlines():
        if line.startswith("Mission goal:"):
            goal = line.partition(":")[2].strip()
        elif (step := _STEP.match(line)) and not step_id:
            step_id, description = step["id"].strip(), step["description"].strip()
        elif failure := _FAILURE.match(line):
            failures.append(Failure(failure["attempt"], failure["type"], failure["message"]))
    return goal, step_id, description, failures


def _diagnosis(last: Failure, goal: str) -> tuple[str, str, str]:
    """(root cause, what a retry would change, whether to skip) for the last failure."""
    message = last.message
    if "simulated transient error" in message:
        return (
            "a transient error that the demo model makes up on purpose (about one step in five)",
            "a retry very likely succeeds: nothing needs fixing first",
            "no need to skip: retry",
        )
    if "[fail]" in goal or "the goal asks for [fail]" in message:
        return (
            "the goal contains [fail], which makes the demo model fail every attempt",
            "nothing: a retry fails the same way while the goal asks for [fail]",
            "skip the step if the later steps can do without it, else abort",
        )
    if last.error_type == "timeout":
        return (
            "the step ran out of time (a slow service, or more work than its timeout_secs)",
            "a retry with a longer timeout_secs, or with less work per attempt",
            "retry with more time first; skip if the result is optional",
        )
    if last.error_type == "permission":
        return (
            "a missing or wrong credential or access right (an API key, a 401/403 answer)",
            "nothing until the key or the permission is fixed; then a retry can succeed",
            "abort if the key cannot be fixed now; skipping leaves the work undone",
        )
    if last.error_type == "missing_resource":
        return (
            "something the step needs does not exist (a file, a module, a URL answering 404)",
            "nothing until the resource exists or the step points at the right one",
            "skip the step if the resource is optional, else fix it and retry",
        )
    if _NETWORK.search(message):
        return (
            "a service the step talks to is down or unreachable; the step itself looks fine",
            "nothing while the service is down: check that it answers again, then retry",
            "skip if the later steps can do without its result; otherwise wait and retry",
        )
    return (
        f"the step's own code raised {last.exception}: a bug or an input it does not handle",
        "nothing unless the code or its input changes: the same attempt fails the same way",
        "skip if the result is optional; otherwise fix the step and retry",
    )


def explain_failures(prompt: str, label: str) -> str:
    """The demo model's analysis of the failures a question lists, labelled ``label``."""
    goal, step_id, description, failures = read_question(prompt)
    step = f"step {step_id!r}" + (f" ({description})" if description else "")
    if not failures:
        return (
            f"{label} Analysis of {step}: no failed attempt is recorded, so there is nothing "
            "to analyse. Recommendation: retry once and read the error it gives."
        )
    last = failures[-1]
    distinct = {f.message for f in failures}
    if len(failures) == 1:
        pattern = f"its only attempt failed with {last.message}"
    elif len(distinct) == 1:
        pattern = f"all {len(failures)} attempts failed the same way, with {last.message}"
    else:
        pattern = (
            f"its {len(failures)} attempts failed in {len(distinct)} different ways, the "
            f"last with {last.message}"
        )
    cause, retry, skip = _diagnosis(last, goal)
    repeat = (
        " The error repeats, so it is not bad luck."
        if len(failures) > 1 and len(distinct) == 1 and "transient" not in last.message
        else ""
    )
    return (
        f"{label} Analysis of {step}: {pattern}.{repeat}\n"
        f"1. Root cause (a guess): {cause}.\n"
        f"2. What a retry would change: {retry}.\n"
        f"3. Skip the step? {skip[0].upper() + skip[1:]}."
    )
