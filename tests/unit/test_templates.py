"""Prompt templates: strict rendering, the shipped library, and the same prompts as before."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.assessment import prompts as assessment_prompts
from services.assessment.drafts import ExerciseDraft, GradeDraft, QuizDraft
from services.content import prompts as content_prompts
from services.planner import prompts as planner_prompts
from services.planner.finalise import CourseDraft
from shared.llm.library import LIBRARY
from shared.llm.prompts import DEFAULT_VERSION, DefaultPrompts
from shared.llm.templates import NamedTemplate, PromptTemplate, TemplateError
from tests.unit.prompt_inputs import CASES

LEGACY = json.loads((Path(__file__).parent / "legacy_prompts.json").read_text())


def template(*messages: tuple[str, str], **variables: str) -> PromptTemplate:
    return PromptTemplate.model_validate(
        {
            "messages": [{"role": role, "content": content} for role, content in messages],
            "variables": {name: {"type": kind} for name, kind in variables.items()},
        }
    )


# ------------------------------------------------------------------ strict rendering


def test_renders_values_into_every_message() -> None:
    greeting = template(
        ("system", "Teach {topic} in {hours} hours."), topic="string", hours="number"
    )
    assert greeting.render({"topic": "chess", "hours": 2.0}) == [
        {"role": "system", "content": "Teach chess in 2 hours."}
    ]


def test_a_missing_variable_is_an_error_naming_it() -> None:
    greeting = template(("user", "{topic} {level}"), topic="string", level="string")
    with pytest.raises(TemplateError, match="missing variables: level"):
        greeting.render({"topic": "chess"})


def test_an_unknown_variable_is_an_error_naming_it() -> None:
    greeting = template(("user", "{topic}"), topic="string")
    with pytest.raises(TemplateError, match="unknown variables: tone"):
        greeting.render({"topic": "chess", "tone": "warm"})


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("string", 3),
        ("string", None),
        ("integer", "3"),
        ("integer", True),
        ("integer", 2.5),
        ("number", "2.5"),
        ("number", False),
        ("boolean", "yes"),
        ("boolean", 1),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error(kind: str, value: Any) -> None:
    one = template(("user", "{x}"), x=kind)
    with pytest.raises(TemplateError, match=f"variable x must be a {kind}"):
        one.render({"x": value})


@pytest.mark.parametrize(
    ("kind", "value", "text"),
    [
        ("string", "", ""),
        ("integer", 3, "3"),
        ("number", 3, "3"),
        ("number", 1.25, "1.25"),
        ("number", 10.0, "10"),
        ("boolean", True, "yes"),
        ("boolean", False, "no"),
    ],
)
def test_values_render_as_text(kind: str, value: Any, text: str) -> None:
    assert template(("user", "[{x}]"), x=kind).render({"x": value}) == [
        {"role": "user", "content": f"[{text}]"}
    ]


def test_a_placeholder_message_expands_into_the_messages_variable() -> None:
    chat = template(
        ("system", "Be brief."),
        ("placeholder", "history"),
        ("user", "{request}"),
        history="messages",
        request="string",
    )
    history = [
        {"role": "user", "content": "Plan {this}"},
        {"role": "assistant", "content": "# Plan"},
    ]
    assert chat.render({"history": history, "request": "Shorter"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Plan {this}"},  # contents are taken as they are
        {"role": "assistant", "content": "# Plan"},
        {"role": "user", "content": "Shorter"},
    ]
    assert chat.render({"history": [], "request": "x"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "x"},
    ]


@pytest.mark.parametrize(
    "history",
    [
        "not a list",
        [{"role": "user"}],
        [{"role": "tool", "content": "x"}],
        [{"role": "user", "content": 3}],
        ["hello"],
    ],
)
def test_a_messages_variable_must_hold_role_and_content_messages(history: Any) -> None:
    chat = template(("placeholder", "history"), history="messages")
    with pytest.raises(TemplateError, match="variable history"):
        chat.render({"history": history})


def test_double_braces_are_literal_and_values_are_not_expanded_again() -> None:
    code = template(("user", 'Answer with {{"x": {x}}} and {y}'), x="integer", y="string")
    assert code.render({"x": 1, "y": "{x} {{z}}"}) == [
        {"role": "user", "content": 'Answer with {"x": 1} and {x} {{z}}'}
    ]


@pytest.mark.parametrize(
    "content",
    ["{x.__class__}", "{x.attr}", "{x[0]}", "{x!r}", "{x:>10}", "{0}", "{}", "{x", "x}"],
)
def test_only_plain_placeholders_are_accepted(content: str) -> None:
    with pytest.raises((TemplateError, ValueError)):
        template(("user", content), x="string")


@pytest.mark.parametrize(
    ("messages", "variables", "error"),
    [
        ([("user", "{x}")], {}, "without a declared variable"),
        ([("user", "hi")], {"x": "string"}, "no message uses"),
        ([("user", "{h}")], {"h": "messages"}, "can only be a placeholder"),
        ([("placeholder", "x")], {"x": "string"}, "needs a messages variable"),
    ],
)
def test_inconsistent_templates_are_rejected(
    messages: list[tuple[str, str]], variables: dict[str, str], error: str
) -> None:
    with pytest.raises((TemplateError, ValueError), match=error):
        template(*messages, **variables)


# ------------------------------------------------------------------ the shipped library

TASKS = {
    "planner.welcome_plan": "welcome_plan",
    "planner.grounded_welcome_plan": "grounded_welcome_plan",
    "planner.refine_plan": "refine_plan",
    "planner.grounded_refine_plan": "grounded_refine_plan",
    "planner.summarise_chat": "summarise_chat",
    "planner.finalise_modules": "finalise_modules",
    "content.write_lesson": "write_lesson",
    "content.write_grounded_lesson": "write_grounded_lesson",
    "content.revise_lesson": "revise_lesson",
    "assessment.quiz": "quiz",
    "assessment.coding_exercise": "coding_exercise",
    "assessment.grade_answer": "grade_answer",
}
SCHEMAS = {
    "planner.finalise_modules": CourseDraft,
    "assessment.quiz": QuizDraft,
    "assessment.coding_exercise": ExerciseDraft,
    "assessment.grade_answer": GradeDraft,
}
SAMPLE: dict[str, Any] = {
    "string": "text",
    "integer": 2,
    "number": 1.5,
    "boolean": True,
    "messages": [{"role": "user", "content": "hi"}],
}


def test_the_library_has_every_prompt_the_services_use() -> None:
    assert {name: t.task for name, t in LIBRARY.items()} == TASKS


@pytest.mark.parametrize("name", sorted(TASKS))
def test_a_shipped_template_validates_documents_itself_and_renders(name: str) -> None:
    shipped = LIBRARY[name]
    assert shipped.name == name and shipped.description
    # what a registry stores and loads back is the same template
    stored = PromptTemplate.model_validate_json(shipped.template().model_dump_json())
    assert stored == shipped.template() and stored.digest() == shipped.template().digest()
    NamedTemplate.model_validate(shipped.model_dump())
    assert all(v.description for v in shipped.variables.values())
    schema = SCHEMAS.get(name)
    assert shipped.model.response_schema == (schema.__name__ if schema else None)
    assert (shipped.model.model, shipped.model.temperature, shipped.model.max_tokens) == (
        None,
        None,
        None,
    )  # the services' configured models and defaults, as before templates
    messages = shipped.render({k: SAMPLE[v.type] for k, v in shipped.variables.items()})
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert all("{" not in m["content"] for m in messages[1:])  # every placeholder filled


async def test_default_prompts_render_the_shipped_templates_as_version_default() -> None:
    variables = planner_prompts.finalise_variables(CASES["finalise_full"][2][0], "# Plan")
    rendered = await DefaultPrompts().render("planner.finalise_modules", variables, subject="c-1")
    assert (rendered.name, rendered.version) == ("planner.finalise_modules", DEFAULT_VERSION)
    assert rendered.messages == LIBRARY["planner.finalise_modules"].render(variables)
    assert rendered.experiment_id is None and rendered.fallback is False
    with pytest.raises(KeyError, match=r"planner\.nope"):
        await DefaultPrompts().render("planner.nope", {})
    with pytest.raises(TemplateError, match="missing variables: plan"):
        await DefaultPrompts().render("planner.finalise_modules", {"profile": "x"})


def test_the_library_imports_without_litellm_or_the_services() -> None:
    code = (
        "import sys, shared.llm.library;"
        "bad = [m for m in sys.modules if m.startswith(('litellm', 'services'))];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# ------------------------------------------------------------------ the same prompts as before

VARIABLES: dict[str, Callable[..., dict[str, Any]]] = {
    "welcome": planner_prompts.welcome_variables,
    "refine": planner_prompts.refine_variables,
    "summarise": planner_prompts.summarise_variables,
    "finalise": planner_prompts.finalise_variables,
    "write": content_prompts.write_variables,
    "revise": content_prompts.revise_variables,
    "quiz": assessment_prompts.quiz_variables,
    "exercise": assessment_prompts.exercise_variables,
    "grade": assessment_prompts.grade_variables,
}
PROMPT_NAMES = {
    "welcome": planner_prompts.WELCOME_PLAN,
    "refine": planner_prompts.REFINE_PLAN,
    "summarise": planner_prompts.SUMMARISE_CHAT,
    "finalise": planner_prompts.FINALISE_MODULES,
    "write": content_prompts.WRITE_LESSON,
    "revise": content_prompts.REVISE_LESSON,
    "quiz": assessment_prompts.QUIZ,
    "exercise": assessment_prompts.EXERCISE,
    "grade": assessment_prompts.GRADE,
}


# templates that came after the move to templates: no hand-built prompt to match
SINCE_TEMPLATES = {
    "planner.grounded_welcome_plan",
    "planner.grounded_refine_plan",
    "content.write_grounded_lesson",
}


def test_every_template_is_checked_against_the_prompts_before_templates() -> None:
    assert set(LEGACY) == set(CASES)
    assert {name for name, _, _ in CASES.values()} == set(LIBRARY) - SINCE_TEMPLATES


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_template_renders_exactly_the_prompt_built_before_templates(case: str) -> None:
    name, function, args = CASES[case]
    assert LEGACY[case]["template"] == name == PROMPT_NAMES[function]
    rendered = LIBRARY[name].render(VARIABLES[function](*args))
    assert rendered == LEGACY[case]["messages"]
