"""Planning: the prompt that asks a model for steps, and validation of what comes back.

A plan is JSON ``[{"id", "description", "can_parallel", "depends_on"}]`` (a
``{"steps": [...]}`` wrapper and Markdown code fences are tolerated). Validation checks ids
are unique, dependencies are known and there is no cycle; a bad plan raises
:class:`PlanError` quoting what was wrong. The DAG helpers here are shared with
:class:`~mission_widgets.core.mission.Mission`, which validates user-given steps the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from .errors import MissionValidationError, PlanError

# typing costs worker start-up; annotations are strings (from __future__).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: First line of every planning prompt (the offline demo model recognises it).
PLAN_PROMPT_HEADER = "You are the planner of a multi-step mission."
#: The first line of the question ``explain`` asks a model (the demo model answers it).
EXPLAIN_PROMPT_HEADER = (
    "A step of a mission has failed after all its retries. Analyse the failures."
)

PLAN_PROMPT = (
    PLAN_PROMPT_HEADER
    + """
Break the goal below into 2 to 8 concrete steps.
Return ONLY a JSON array, no prose, where each element is an object with:
  "id": a short unique snake_case identifier,
  "description": what the step must do, in one or two sentences,
  "can_parallel": true if it may run at the same time as other parallel steps,
  "depends_on": a list of ids of steps whose results it needs (may be empty).
Dependencies must refer to ids in the same array and must not form a cycle.

GOAL: {goal}"""
)


def plan_prompt(goal: str) -> str:
    return PLAN_PROMPT.format(goal=goal)


def _quote(text: str, limit: int = 300) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + " ...")


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """Parse the JSON inside a model reply: bare, fenced, or embedded in prose."""
    if not isinstance(text, str):
        raise PlanError(f"the model returned {type(text).__name__}, not text: {text!r}")
    candidates = [text.strip()]
    candidates += [block.strip() for block in _FENCE.findall(text)]
    for opener, closer in (("[", "]"), ("{", "}")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    last_error = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            last_error = exc
    raise PlanError(f"the plan is not valid JSON ({last_error}): {_quote(text)}")


def parse_plan(text: str) -> list[dict[str, Any]]:
    """Turn a model reply into validated step specs ``{id, description, parallel, depends_on}``."""
    data = extract_json(text)
    if isinstance(data, Mapping):
        for key in ("steps", "plan"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list) or not data:
        raise PlanError(f"the plan must be a non-empty JSON array of steps: {_quote(text)}")
    specs: list[dict[str, Any]] = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise PlanError(f"plan step #{index + 1} is not an object: {item!r}")
        step_id = item.get("id", f"step_{index + 1}")
        if not isinstance(step_id, str | int) or not str(step_id).strip():
            raise PlanError(f"plan step #{index + 1} has an invalid id {step_id!r}")
        description = item.get("description") or item.get("task")
        if not isinstance(description, str) or not description.strip():
            raise PlanError(f"plan step {step_id!r} has no description")
        depends = item.get("depends_on") or []
        if isinstance(depends, str | int):
            depends = [depends]
        if not isinstance(depends, list):
            raise PlanError(f"plan step {step_id!r}: depends_on must be a list, got {depends!r}")
        specs.append(
            {
                "id": str(step_id).strip(),
                "description": description.strip(),
                "parallel": bool(item.get("can_parallel", item.get("parallel", False))),
                "depends_on": [str(d) for d in depends],
            }
        )
    try:
        validate_dag((s["id"], s["depends_on"]) for s in specs)
    except MissionValidationError as exc:
        raise PlanError(f"invalid plan: {exc}. Plan was: {_quote(text)}") from None
    return specs


def validate_dag(nodes: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
    """Check ids are unique, dependencies known, no cycles; return a topological order."""
    deps: dict[str, list[str]] = {}
    for node_id, depends_on in nodes:
        if node_id in deps:
            raise MissionValidationError(f"duplicate step id {node_id!r}")
        deps[node_id] = list(depends_on)
    for node_id, depends_on in deps.items():
        for dep in depends_on:
            if dep not in deps:
                raise MissionValidationError(f"step {node_id!r} depends on unknown step {dep!r}")
            if dep == node_id:
                raise MissionValidationError(f"step {node_id!r} depends on itself")
    cycle = find_cycle(deps)
    if cycle:
        raise MissionValidationError("dependency cycle: " + " -> ".join(cycle))
    return topological_order(deps)


def find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a list of ids whose first and last are the same, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        colour[root] = grey
        while stack:
            node, index = stack[-1]
            children = deps[node]
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                if colour.get(child) == grey:
                    return path[path.index(child) :] + [child]
                if colour.get(child) == white:
                    colour[child] = grey
                    stack.append((child, 0))
                    path.append(child)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's order in rounds (every node whose dependencies are in earlier rounds), each
    round in the given order of ids; O(nodes + edges) apart from sorting the rounds."""
    position = {node: i for i, node in enumerate(deps)}
    waiting = {node: len(set(d)) for node, d in deps.items()}
    dependents: dict[str, list[str]] = {node: [] for node in deps}
    for node, d in deps.items():
        for dep in set(d):
            dependents[dep].append(node)
    order: list[str] = []
    current = [node for node, n in waiting.items() if n == 0]
    while current:
        order.extend(current)
        following = []
        for node in current:
            for child in dependents[node]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    following.append(child)
        current = sorted(following, key=position.__getitem__)
    if len(order) != len(deps):  # pragma: no cover - validate_dag rejects cycles first
        raise MissionValidationError("dependency cycle")
    return order


def step_prompt(goal: str | None, step_id: str, description: str, context: str | None) -> str:
    """The prompt a model gets to execute a step that has no executor."""
    parts = []
    if goal:
        parts.append(f"MISSION GOAL: {goal}")
    parts.append(f"CURRENT STEP ({step_id}): {description}")
    if context:
        parts.append(context)
    parts.append("Carry out the current step and reply with its result only.")
    return "\n\n".join(parts)
