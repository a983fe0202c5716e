"""What a step attempt is told: results of earlier steps, shared memory, earlier failures.

The context is a text handed to the executor (``executor(task, session, context)``) or put in
the prompt of a model that executes the step. Everything here is bounded in size.
"""

from __future__ import annotations

from collections.abc import Mapping

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .contracts import MissionLike
    from .step import MissionStep

#: The context line that marks an explanation given to a retry (aisdk's wording).
ANALYSIS_PREFIX = "[AGENT ANALYSIS]"


def preview(value: Any, limit: int = 300) -> str | None:
    """A one-line view of a value for events and tables: at most ``limit`` characters."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def step_context(mission: MissionLike, step: MissionStep, with_errors: bool) -> str | None:
    """The context text for the next attempt of ``step`` (None when there is nothing to say)."""
    parts = []
    if step.depends_on:
        lines = []
        for dep_id in step.depends_on:
            dep = mission.get_step(dep_id)
            if dep.status == "done":
                lines.append(f"- {dep_id}: {dep.result_for_context()}")
            else:
                lines.append(f"- {dep_id}: (failed and skipped: {dep.last_error})")
        parts.append("RESULTS OF EARLIER STEPS:\n" + "\n".join(lines))
    if step.executor is None and mission.default_executor is None:  # the model executes it
        memory = memory_context(mission.session.memory(), f"{mission.goal}\n{step.description}")
        if memory:
            parts.append(memory)
    if with_errors and step.error_history:
        lines = [
            # An explanation (error_type "analysis") already reads "[AGENT ANALYSIS] ...".
            entry["error"]
            if entry.get("error_type") == "analysis"
            else f"- attempt {entry['attempt']}: {entry['error']}"
            for entry in step.error_history
        ]
        parts.append(
            "PREVIOUS ATTEMPT(S) FAILED. Avoid repeating these errors:\n" + "\n".join(lines)
        )
    return "\n\n".join(parts) or None


#: Shared session memory shown to a model executing a step: at most this many characters
#: in all, and this many per entry.
MEMORY_CONTEXT_CHARS = 2000
MEMORY_ENTRY_CHARS = 500


def memory_context(memory: Mapping[str, Any], text: str) -> str | None:
    """The shared session memory to show a model executing a step, bounded in size.

    Entries whose key appears in ``text`` (the goal and the step description) come first,
    then the others while they fit; keys starting with ``_`` are private and never shown.
    """
    import json
    import re

    lowered = text.lower()

    def mentioned(key: str) -> bool:
        words = {key.lower(), key.lower().replace("_", " ")}
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", lowered) for w in words)

    entries = [(k, v) for k, v in memory.items() if isinstance(k, str) and not k.startswith("_")]
    entries.sort(key=lambda item: not mentioned(item[0]))
    lines: list[str] = []
    used = left_out = 0
    for key, value in entries:
        if isinstance(value, str):
            shown = value
        else:
            try:
                shown = json.dumps(value, ensure_ascii=False, default=repr)
            except (TypeError, ValueError):
                shown = repr(value)
        if len(shown) > MEMORY_ENTRY_CHARS:
            shown = shown[:MEMORY_ENTRY_CHARS] + " ..."
        line = f"- {key}: {shown}"
        if used + len(line) > MEMORY_CONTEXT_CHARS:
            left_out += 1
            continue
        lines.append(line)
        used += len(line) + 1
    if left_out:
        lines.append(f"({left_out} more entries not shown)")
    return "SHARED SESSION MEMORY:\n" + "\n".join(lines) if lines else None
