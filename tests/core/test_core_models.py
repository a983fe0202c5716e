"""Models: lazy "provider:name" specs, providers, callables, DemoModel; plan parsing."""

from __future__ import annotations

import json
import pickle
import uuid

import pytest

from mission_widgets import (
    DemoModel,
    Mission,
    MissionStep,
    ModelResolutionError,
    PlanError,
    register_provider,
)
from mission_widgets.core import LazyModel, parse_plan, resolve_model
from mission_widgets.core.models import SIMULATED_LABEL, registered_providers
from mission_widgets.core.planning import PLAN_PROMPT_HEADER, plan_prompt


def unique_provider() -> str:
    """A provider name no other test registers (the registry is process-wide)."""
    return "p" + uuid.uuid4().hex[:12]


class EchoModel:
    def __init__(self, name):
        self.name = name
        self.prompts = []

    def generate(self, prompt):
        self.prompts.append(prompt)
        if prompt.startswith(PLAN_PROMPT_HEADER):
            return json.dumps([{"id": "only", "description": "the only step"}])
        return f"{self.name} answered"


# -- lazy specs and providers ------------------------------------------------------------------


def test_a_string_spec_is_resolved_lazily():
    mission = Mission(
        "g", model="test:model", steps=[MissionStep("a", "a", executor=lambda t, s, c: 1)]
    )
    assert mission.model == "test:model"  # kept as the user gave it (aisdk)
    assert type(mission.model) is str
    assert mission.run().status == "succeeded"  # never needed, never resolved
    assert mission.model == "test:model"


def test_unresolvable_spec_raises_a_clear_error_at_run():
    spec = unique_provider() + ":model"
    mission = Mission("plan me", model=spec)
    with pytest.raises(ModelResolutionError, match=rf"{spec}.*no provider") as info:
        mission.run()
    assert "plan" in str(info.value)
    assert mission.audit_log == []


def test_unresolvable_spec_raises_when_a_step_needs_it():
    spec = unique_provider() + ":model"
    mission = Mission("g", model=spec, steps=[MissionStep("talk", "talk")])
    with pytest.raises(ModelResolutionError, match=rf"{spec}.*'talk'"):
        mission.run()


def test_lazy_model_error_names_the_spec_and_known_providers():
    spec = unique_provider() + ":big"
    model = LazyModel(spec)
    with pytest.raises(ModelResolutionError, match=rf"cannot resolve model '{spec}'.*demo"):
        model.generate("hi")


def test_register_provider_resolves_specs_through_the_factory():
    name = unique_provider()
    made = []

    def factory(model_name):
        made.append(model_name)
        return EchoModel(model_name)

    register_provider(name, factory)
    assert name in registered_providers()
    model = resolve_model(f"{name}:large")
    assert made == []  # lazy
    assert model.generate("hello") == "large answered"
    assert model.generate("again") == "large answered"
    assert made == ["large"]  # resolved once


def test_a_mission_plans_and_runs_with_a_registered_provider():
    name = unique_provider()
    register_provider(name, EchoModel)
    mission = Mission("g", model=f"{name}:x").run()
    assert mission.status == "succeeded"
    assert mission.get_step("only").result == "x answered"


def test_provider_factory_may_return_a_callable():
    name = unique_provider()
    register_provider(name, lambda model_name: lambda prompt: f"callable {model_name}")
    assert resolve_model(f"{name}:c").generate("p") == "callable c"


def test_failing_factory_is_a_resolution_error_naming_the_provider():
    name = unique_provider()

    def factory(model_name):
        raise OSError("no API key in the environment")

    register_provider(name, factory)
    with pytest.raises(ModelResolutionError, match=rf"{name}.*no API key"):
        resolve_model(f"{name}:m").generate("p")
    # and a mission that needs it fails with that reason
    mission = Mission("g", model=f"{name}:m").run()
    assert mission.status == "failed"
    assert "no API key" in mission.error


def test_registering_twice_needs_replace():
    name = unique_provider()
    register_provider(name, EchoModel)
    with pytest.raises(ValueError, match="already registered"):
        register_provider(name, EchoModel)
    register_provider(name, lambda n: lambda p: "replaced", replace=True)
    assert resolve_model(f"{name}:m").generate("p") == "replaced"


@pytest.mark.parametrize("bad", ["", "has space", "a:b", None])
def test_provider_name_must_be_a_simple_word(bad):
    with pytest.raises(ValueError, match="provider name"):
        register_provider(bad, EchoModel)


def test_provider_factory_must_be_callable():
    with pytest.raises(TypeError, match="factory"):
        register_provider(unique_provider(), "not callable")


def test_lazy_model_pickles_as_its_spec():
    model = LazyModel("demo:fast")
    model.resolve()
    copy = pickle.loads(pickle.dumps(model))
    assert copy.spec == "demo:fast"
    assert copy._resolved is None
    assert str(copy) == "demo:fast"


def test_callable_and_generate_models():
    assert resolve_model(None) is None
    assert resolve_model(lambda prompt: prompt.upper()).generate("hi") == "HI"
    echo = EchoModel("e")
    assert resolve_model(echo) is echo
    with pytest.raises(ModelResolutionError, match="str|int"):
        resolve_model(12)


# -- the demo model ------------------------------------------------------------------------------


def test_demo_model_plans_and_runs_a_mission_to_success():
    progress = []
    mission = Mission("Explain how owls hunt at night", model="demo:fast", backoff_factor=0)
    mission.add_event_sink(lambda e: e["event"] == "progress" and progress.append(e["step_id"]))
    mission.run()
    assert mission.status == "succeeded", mission.error
    assert 3 <= len(mission.steps) <= 5
    assert [s.id for s in mission.steps[:3]] == ["gather", "questions", "draft"]
    assert mission.get_step("gather").parallel and mission.get_step("questions").parallel
    assert mission.get_step("draft").depends_on == ["gather", "questions"]
    for step in mission.steps:
        assert step.status == "done"
        assert step.result.startswith("[simulated")
        assert SIMULATED_LABEL in step.result
    assert set(progress) == {s.id for s in mission.steps}


def test_demo_model_failing_goal_never_succeeds():
    mission = Mission(
        "Explain owls [fail]",
        model="demo:fast",
        stall_policy={"on_max_retries": "abort"},
        backoff_factor=0,
    ).run()
    assert mission.status == "failed"
    assert "simulated failure" in mission.error


def test_demo_model_plan_is_valid_json_in_a_fence():
    reply = DemoModel(step_seconds=0).generate(plan_prompt("any goal"))
    assert reply.startswith("```json")
    specs = parse_plan(reply)
    assert {s["id"] for s in specs} >= {"gather", "questions", "draft"}


def test_unknown_demo_variant_is_named():
    with pytest.raises(ModelResolutionError, match="demo:turbo"):
        resolve_model("demo:turbo").generate("p")


# -- plan parsing ----------------------------------------------------------------------------


PLAN = [
    {"id": "a", "description": "first", "can_parallel": True, "depends_on": []},
    {"id": "b", "description": "second", "depends_on": ["a"]},
]


def test_parse_plan_returns_step_specs():
    specs = parse_plan(json.dumps(PLAN))
    assert specs == [
        {"id": "a", "description": "first", "parallel": True, "depends_on": []},
        {"id": "b", "description": "second", "parallel": False, "depends_on": ["a"]},
    ]


@pytest.mark.parametrize(
    "wrap",
    [
        lambda text: f"```json\n{text}\n```",
        lambda text: f"```\n{text}\n```",
        lambda text: f"Here is my plan:\n```JSON\n{text}\n```\nAnything else?",
        lambda text: f"The plan is {text} -- enjoy",
        lambda text: json.dumps({"steps": json.loads(text)}),
    ],
)
def test_parse_plan_tolerates_fences_prose_and_a_wrapper(wrap):
    assert [s["id"] for s in parse_plan(wrap(json.dumps(PLAN)))] == ["a", "b"]


def test_duplicate_ids_in_a_plan():
    plan = [{"id": "a", "description": "x"}, {"id": "a", "description": "y"}]
    with pytest.raises(PlanError, match="duplicate step id 'a'"):
        parse_plan(json.dumps(plan))


def test_unknown_dependency_in_a_plan():
    plan = [{"id": "a", "description": "x", "depends_on": ["zz"]}]
    with pytest.raises(PlanError, match="'a' depends on unknown step 'zz'"):
        parse_plan(json.dumps(plan))


def test_cycle_in_a_plan_is_named():
    plan = [
        {"id": "a", "description": "x", "depends_on": ["b"]},
        {"id": "b", "description": "y", "depends_on": ["a"]},
    ]
    with pytest.raises(PlanError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        parse_plan(json.dumps(plan))


def test_invalid_json_is_quoted():
    with pytest.raises(PlanError, match=r"not valid JSON.*'\[\{id: a, oops'"):
        parse_plan("[{id: a, oops")


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ("[]", "non-empty JSON array"),
        ('{"answer": 42}', "non-empty JSON array"),
        ('["just a string"]', "#1 is not an object"),
        ('[{"id": "a"}]', "'a' has no description"),
        ('[{"id": "a", "description": "x", "depends_on": {"b": 1}}]', "depends_on"),
    ],
)
def test_malformed_plans_say_what_is_wrong(reply, match):
    with pytest.raises(PlanError, match=match):
        parse_plan(reply)


def test_plan_step_ids_default_and_are_stringified():
    plan = [{"id": 1, "description": "x"}, {"task": "y", "depends_on": 1}]
    specs = parse_plan(json.dumps(plan))
    assert [(s["id"], s["description"], s["depends_on"]) for s in specs] == [
        ("1", "x", []),
        ("step_2", "y", ["1"]),
    ]
