"""The offline model: deterministic, well-formed output for every task."""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

import pytest
from pydantic import BaseModel, Field

from services.assessment.drafts import ExerciseDraft, QuizDraft
from shared.llm import load_litellm
from shared.llm.offline import (
    HOOK_FAIL,
    HOOK_INVALID_JSON,
    HOOK_INVALID_JSON_ONCE,
    JSON_SCHEMA_HEADER,
    _schedule,
    astream,
    generate,
    latency_s,
    module_count,
    parse_modules,
    parse_profile,
    read_task,
    split_pieces,
    strip_task_marker,
    task_marker,
)

PROFILE_JSON = json.dumps(
    {
        "topic": "Python",
        "level": "beginner",
        "duration_hours": 12,
        "expectations": "automate spreadsheets at work",
        "language": "en",
    }
)
PROFILE_LINES = (
    "Topic: Watercolour painting\nLevel: intermediate\nDuration: 20 hours\n"
    "Expectations: paint landscapes\nLanguage: fr"
)


def conversation(task: str, *turns: tuple[str, str]) -> list[dict[str, Any]]:
    """Messages with the task marker, as the client sends them."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"{task_marker(task)}\nYou are a helpful tutor."}
    ]
    messages += [{"role": role, "content": content} for role, content in turns]
    return messages


class Module(BaseModel):
    order: int
    title: str = Field(min_length=1)
    description: str
    learning_objectives: list[str] = Field(min_length=1)
    estimated_hours: float = Field(gt=0)


class Modules(BaseModel):
    modules: list[Module] = Field(min_length=1)


def test_task_marker_round_trip() -> None:
    messages = conversation("quiz", ("user", "hi"))
    assert task_marker("quiz") == "[lectern-task: quiz]"
    assert read_task(messages) == "quiz"
    assert strip_task_marker(messages[0]["content"]) == "You are a helpful tutor."
    assert read_task([{"role": "user", "content": "[lectern-task: quiz]"}]) is None
    assert read_task([{"role": "system", "content": "no marker"}]) is None


@pytest.mark.parametrize("profile", [PROFILE_JSON, PROFILE_LINES])
def test_welcome_plan_is_deterministic_and_has_modules(profile: str) -> None:
    messages = conversation("welcome_plan", ("user", profile))
    plan = generate(messages)
    assert plan == generate(messages)
    parsed = parse_profile(profile)
    assert plan.startswith(f"# {parsed.topic} — course plan")
    assert "## Modules" in plan
    modules = parse_modules(plan)
    assert len(modules) == module_count(parsed.duration_hours)
    assert all(m["title"] and m["hours"] for m in modules)
    assert re.search(r"^1\. \*\*.+\*\* — .+\(\d+(\.\d)? h\)$", plan, re.MULTILINE)


def test_profile_parsing_is_robust() -> None:
    lines = parse_profile(PROFILE_LINES)
    assert (lines.topic, lines.level, lines.duration_hours, lines.language) == (
        "Watercolour painting",
        "intermediate",
        20.0,
        "fr",
    )
    assert lines.expectations == "paint landscapes"
    nested = parse_profile('Learner profile: {"profile": {"subject": "SQL", "hours": "6"}}')
    assert (nested.topic, nested.duration_hours) == ("SQL", 6.0)
    empty = parse_profile("")
    assert empty.topic and empty.level == "beginner" and empty.duration_hours == 10.0
    assert module_count(1) == 3 and module_count(100) == 8 and module_count(10) == 5


def test_welcome_plan_personalises_level_expectations_and_language() -> None:
    plan = generate(conversation("welcome_plan", ("user", PROFILE_LINES)))
    assert "paint landscapes" in plan
    assert "fr" in plan
    assert "builds on what you already know" in plan


def test_refine_plan_keeps_the_plan_and_quotes_the_request() -> None:
    plan = generate(conversation("welcome_plan", ("user", PROFILE_JSON)))
    request = "Please add a module on testing"
    messages = conversation(
        "refine_plan", ("user", PROFILE_JSON), ("assistant", plan), ("user", request)
    )
    refined = generate(messages)
    assert refined == generate(messages)
    assert refined.startswith(plan.rstrip())
    assert "## Changes" in refined and request in refined
    # A second refinement adds to the same section.
    again = generate(
        [
            *messages,
            {"role": "assistant", "content": refined},
            {"role": "user", "content": "Shorter please"},
        ]
    )
    assert again.count("## Changes") == 1 and "Shorter please" in again


def test_summarise_chat_is_short() -> None:
    plan = generate(conversation("welcome_plan", ("user", PROFILE_JSON)))
    summary = generate(
        conversation(
            "summarise_chat", ("user", PROFILE_JSON), ("assistant", plan), ("user", "more practice")
        )
    )
    assert "summary" in summary.lower() and "more practice" in summary
    assert len(summary) < 1500


def test_finalise_modules_follows_the_plan() -> None:
    plan = generate(conversation("welcome_plan", ("user", PROFILE_JSON)))
    messages = conversation(
        "finalise_modules", ("user", PROFILE_JSON), ("assistant", plan), ("user", "Looks good")
    )
    text = generate(messages)
    assert text == generate(messages)
    modules = Modules.model_validate_json(text).modules
    assert [m.title for m in modules] == [m["title"] for m in parse_modules(plan)]
    assert [m.order for m in modules] == list(range(1, len(modules) + 1))


def test_finalise_modules_without_a_plan_generates_four() -> None:
    text = generate(conversation("finalise_modules", ("user", "topic: Rust")))
    modules = Modules.model_validate_json(text).modules
    assert len(modules) == 4 and "Rust" in modules[0].title


@pytest.mark.parametrize(
    ("brief", "technical"),
    [
        ('{"title": "Python functions", "description": "Defining functions."}', True),
        ("title: Colour theory\ndescription: Mixing pigments.", False),
    ],
)
def test_write_lesson_structure(brief: str, technical: bool) -> None:
    lesson = generate(conversation("write_lesson", ("user", brief)))
    assert lesson.startswith("# ")
    assert "```mermaid\nflowchart" in lesson
    assert ("```python" in lesson) is technical
    check = lesson.split("## Knowledge check", 1)[1]
    assert len(re.findall(r"^\d\. \*\*", check, re.MULTILINE)) == 3
    assert check.count("*Answer:*") == 3


def test_quiz_has_exactly_one_correct_option_per_question() -> None:
    messages = conversation("quiz", ("user", "title: Python loops\nnum_questions: 5"))
    quiz = QuizDraft.model_validate_json(generate(messages))  # one correct option each
    assert len(quiz.multiple_choice) == 5
    assert all(o.explanation for q in quiz.multiple_choice for o in q.options)
    positions = {
        next(i for i, o in enumerate(q.options) if o.correct) for q in quiz.multiple_choice
    }
    assert len(positions) > 1
    assert quiz.open_questions and all(q.rubric and q.model_answer for q in quiz.open_questions)


def test_quiz_reads_the_brief_not_the_lesson_after_the_separator() -> None:
    brief = 'title: Python loops\n=== LESSON ===\n# Other\ntitle: Not this\n{"title": "nor this"}'
    quiz = QuizDraft.model_validate_json(generate(conversation("quiz", ("user", brief))))
    assert quiz.title == "Quiz: Python loops"


def _failures(code: str, tests: str) -> int:
    namespace: dict[str, Any] = {}
    exec(code + "\n" + tests, namespace)
    failed = 0
    for name, test in list(namespace.items()):
        if name.startswith("test_"):
            try:
                test()
            except Exception:
                failed += 1
    return failed


@pytest.mark.parametrize("difficulty", ["easier", "standard", "harder"])
def test_coding_exercise_passes_on_the_solution_and_fails_on_the_starter(difficulty: str) -> None:
    brief = f"title: Lists\ndifficulty: {difficulty}"
    draft = ExerciseDraft.model_validate_json(
        generate(conversation("coding_exercise", ("user", brief)))
    )
    tests = draft.visible_tests + "\n" + draft.hidden_tests
    assert _failures(draft.reference_solution, tests) == 0
    assert _failures(draft.starter_code, tests) >= 1


def test_coding_exercise_difficulties_differ() -> None:
    texts = {
        generate(conversation("coding_exercise", ("user", f"title: Lists\ndifficulty: {d}")))
        for d in ("easier", "standard", "harder")
    }
    assert len(texts) == 3


def test_grade_and_recommendation() -> None:
    good = json.loads(
        generate(
            conversation(
                "grade_answer",
                ("user", "answer: a loop repeats code\nexpected: a loop repeats code"),
            )
        )
    )
    poor = json.loads(
        generate(
            conversation("grade_answer", ("user", "answer: no idea\nexpected: a loop repeats code"))
        )
    )
    assert good["score"] == 1.0 and 0 <= poor["score"] < 0.5 and poor["feedback"]
    actions = [
        json.loads(generate(conversation("recommendation", ("user", f"score: {s}"))))["action"]
        for s in (0.2, 0.6, 95)
    ]
    assert actions == ["review", "practice", "advance"]


def test_revise_lesson_adds_revision_notes() -> None:
    lesson = generate(conversation("write_lesson", ("user", "title: Python loops")))
    revised = generate(
        conversation(
            "revise_lesson",
            ("user", "title: Python loops"),
            ("assistant", lesson),
            ("user", "Explain while loops too"),
        )
    )
    assert revised.startswith(lesson.rstrip())
    assert "## Revision notes" in revised and "Explain while loops too" in revised


def test_unknown_task_and_missing_marker_echo() -> None:
    unknown = generate(conversation("mystery", ("user", "hello there")))
    assert "hello there" in unknown and unknown == generate(
        conversation("mystery", ("user", "hello there"))
    )
    no_marker = generate([{"role": "user", "content": "just text"}])
    assert "just text" in no_marker


def test_unknown_task_with_schema_answers_schema_shaped_json() -> None:
    schema = json.dumps(Modules.model_json_schema())
    messages = [
        {
            "role": "system",
            "content": f"{task_marker('other')}\nAnswer. {JSON_SCHEMA_HEADER}\n{schema}",
        },
        {"role": "user", "content": "go"},
    ]
    Modules.model_validate_json(generate(messages))


def test_invalid_json_hooks() -> None:
    always = conversation("quiz", ("user", f"title: X {HOOK_INVALID_JSON}"))
    with pytest.raises(ValueError):
        json.loads(generate(always))
    repaired_always = [
        *always,
        {"role": "assistant", "content": "{"},
        {"role": "user", "content": "please repair"},
    ]
    with pytest.raises(ValueError):
        json.loads(generate(repaired_always))

    once = conversation("quiz", ("user", f"title: X {HOOK_INVALID_JSON_ONCE}"))
    with pytest.raises(ValueError):
        json.loads(generate(once))
    repair = [
        *once,
        {"role": "assistant", "content": "{"},
        {"role": "user", "content": "Please repair it."},
    ]
    QuizDraft.model_validate_json(generate(repair))


def test_split_pieces_round_trips() -> None:
    text = "  leading space\n\nand two  spaces  ```code```\n"
    pieces = split_pieces(text)
    assert "".join(pieces) == text and len(pieces) > 1


def test_chunks_are_due_on_a_fixed_schedule() -> None:
    before = time.monotonic()
    due = _schedule(0.9, 4)
    after = time.monotonic()
    offsets = [at - before for at in due]
    assert 0.3 <= offsets[0] <= 0.3 + (after - before)  # a third before the first chunk
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(due)]
    assert gaps == [0.2] * 3  # the rest, evenly
    assert 0.9 <= offsets[-1] <= 0.9 + (after - before)  # the last one at the latency
    assert _schedule(0.5, 1)[0] - before >= 0.5
    assert len(_schedule(0, 3)) == 3


async def test_a_slow_consumer_does_not_stretch_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a server streams at its own pace: a consumer that takes 2 ms over each chunk reads
    # some chunks late, but the answer still ends at the model's latency
    monkeypatch.setenv("LECTERN_OFFLINE_LATENCY_MS", "400")
    messages = conversation("write_lesson", ("user", "Title: Loops\nTopic: Python"))
    started = time.monotonic()
    chunks = 0
    async for _ in astream(messages, latency_s()):
        chunks += 1
        time.sleep(0.002)  # noqa: ASYNC251 (the consumer's own work, blocking the loop)
    elapsed = time.monotonic() - started
    # pausing after each chunk would add the consumer's 2 ms per chunk: 0.4 s + 0.1-0.25 s
    assert 50 <= chunks <= 125, chunks
    assert 0.4 <= elapsed < 0.48, elapsed


async def test_through_litellm_streaming_with_latency_and_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    litellm = load_litellm()
    messages = conversation("welcome_plan", ("user", PROFILE_JSON))
    monkeypatch.setenv("LECTERN_OFFLINE_LATENCY_MS", "150")
    started = time.perf_counter()
    response = await litellm.acompletion(
        model="offline/lectern",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    async for chunk in response:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert time.perf_counter() - started >= 0.14
    assert "".join(pieces) == generate(messages) and len(pieces) > 5
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0

    monkeypatch.delenv("LECTERN_OFFLINE_LATENCY_MS")
    plain = await litellm.acompletion(model="offline/lectern", messages=messages)
    assert plain.choices[0].message.content == generate(messages)

    with pytest.raises(litellm.BadRequestError):
        await litellm.acompletion(
            model="offline/lectern",
            messages=conversation("quiz", ("user", HOOK_FAIL)),
        )
