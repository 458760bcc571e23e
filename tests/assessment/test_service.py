"""The assessment service on the real PostgreSQL and the real sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from services.assessment import service
from services.assessment.drafts import ExerciseDraft
from services.assessment.exercises import MAX_GENERATIONS
from services.assessment.store import exercises, quizzes
from shared.contracts.assessment import GenerateExercise, GenerateExercisePayload
from shared.llm.offline import coding_exercise
from shared.messaging import PermanentError
from tests.assessment.conftest import fake_result, lesson_event, new_course, outbox

BROKEN_SOLUTION = "def summarise(values):\n    return {'count': 0, 'total': 0.0, 'mean': 0.0}\n"


def _offline_exercise(difficulty: str = "standard") -> dict[str, Any]:
    return coding_exercise([{"role": "user", "content": f"title: Lists\ndifficulty: {difficulty}"}])


def _scripted(*drafts: dict[str, Any]) -> Any:
    """An override answering coding_exercise calls with ``drafts`` in turn (the last repeats)."""
    queue = list(drafts)

    def answer(call: dict[str, Any]) -> Any:
        draft = queue.pop(0) if len(queue) > 1 else queue[0]

        async def result() -> Any:
            return ExerciseDraft.model_validate(draft), fake_result()

        return result()

    return answer


async def _exercise_rows(deps: Any, course_id: str) -> list[Any]:
    async with deps.sessionmaker() as session:
        rows = await session.execute(
            select(exercises)
            .where(exercises.c.course_id == course_id)
            .order_by(exercises.c.created_at)
        )
        return list(rows)


async def test_a_lesson_with_code_gets_a_quiz_and_a_verified_exercise(deps: Any) -> None:
    course = new_course()
    event = lesson_event(course)
    assert await service.assess_lesson(event, deps) is True
    async with deps.sessionmaker() as session:
        quiz = (await session.execute(select(quizzes).where(quizzes.c.course_id == course))).one()
    kinds = [q["kind"] for q in quiz.questions]
    assert kinds.count("choice") >= 1 and kinds.count("open") >= 1
    for q in quiz.questions:
        if q["kind"] == "choice":
            assert sum(o["correct"] for o in q["options"]) == 1
            assert all(o["explanation"] for o in q["options"])
        else:
            assert q["model_answer"] and q["rubric"]
    [exercise] = await _exercise_rows(deps, course)
    assert exercise.verified is True and exercise.attempts == 1
    runs = {r["code"]: r for r in exercise.verification["runs"]}
    assert all(t["status"] == "passed" for t in runs["reference_solution"]["tests"])
    assert any(t["status"] != "passed" for t in runs["starter_code"]["tests"])
    [ready] = [m for m in await outbox(deps, course) if m["schema"] == "assessment.ready.v1"]
    p = ready["payload"]
    assert p["quiz_id"] == quiz.quiz_id and p["exercise"]["exercise_id"] == exercise.exercise_id
    assert p["exercise"]["verified"] is True and p["multiple_choice"] == kinds.count("choice")
    assert ready["job_id"] == event.job_id and ready["causation_id"] == event.message_id
    assert "correct" not in str(ready) and "reference_solution" not in str(ready)


async def test_redelivery_and_a_second_announcement_cost_no_llm_call(deps: Any) -> None:
    course = new_course()
    event = lesson_event(course)
    assert await service.assess_lesson(event, deps) is True
    calls = len(deps.llm.calls)
    assert await service.assess_lesson(event, deps) is False  # redelivered
    again = lesson_event(course, message_id="another-announcement-" + course)
    assert await service.assess_lesson(again, deps) is True  # re-announced from the store
    assert len(deps.llm.calls) == calls
    ready = [m for m in await outbox(deps, course) if m["schema"] == "assessment.ready.v1"]
    assert len(ready) == 2 and ready[0]["payload"]["quiz_id"] == ready[1]["payload"]["quiz_id"]


@pytest.mark.parametrize("technical", [True, False], ids=["with an exercise", "quiz only"])
async def test_the_first_announcement_says_what_a_second_reads_back_from_the_store(
    deps: Any, technical: bool
) -> None:
    """assessment.ready is built from what was just stored; a second announcement of the
    lesson builds it from the rows: the two say the same."""
    course = new_course()
    await service.assess_lesson(lesson_event(course, technical=technical), deps)
    again = lesson_event(course, technical=technical, message_id="again-" + course)
    await service.assess_lesson(again, deps)
    first, second = [
        m["payload"] for m in await outbox(deps, course) if m["schema"] == "assessment.ready.v1"
    ]
    assert (first["exercise"] is not None) is technical
    assert first["input_tokens"] > 0 and first["multiple_choice"] > 0
    assert first == second


async def test_a_lesson_without_code_gets_a_quiz_only(deps: Any) -> None:
    course = new_course()
    await service.assess_lesson(lesson_event(course, technical=False), deps)
    assert "coding_exercise" not in deps.llm.tasks()
    assert await _exercise_rows(deps, course) == []
    [ready] = [m for m in await outbox(deps, course) if m["schema"] == "assessment.ready.v1"]
    assert ready["payload"]["exercise"] is None
    assert "no code" in ready["payload"]["exercise_note"]


async def test_a_broken_reference_solution_is_caught_and_regenerated(deps: Any) -> None:
    course = new_course()
    broken = {**_offline_exercise(), "reference_solution": BROKEN_SOLUTION}
    deps.llm.overrides["coding_exercise"] = _scripted(broken, _offline_exercise())
    await service.assess_lesson(lesson_event(course), deps)
    [exercise] = await _exercise_rows(deps, course)
    assert exercise.verified is True and exercise.attempts == 2
    second = [c for c in deps.llm.calls if c["task"] == "coding_exercise"][1]
    feedback = second["messages"][-1]["content"]
    assert "failed verification" in feedback and "reference solution fails" in feedback
    assert "reference solution fails" in exercise.verification["problems"][0]


async def test_an_exercise_that_never_verifies_is_kept_unverified_with_the_reason(
    deps: Any,
) -> None:
    course = new_course()
    broken = {**_offline_exercise(), "reference_solution": BROKEN_SOLUTION}
    deps.llm.overrides["coding_exercise"] = _scripted(broken)
    await service.assess_lesson(lesson_event(course), deps)
    [exercise] = await _exercise_rows(deps, course)
    assert exercise.verified is False and exercise.attempts == MAX_GENERATIONS
    assert deps.llm.tasks().count("coding_exercise") == MAX_GENERATIONS
    assert exercise.verification_note.startswith(f"Unverified after {MAX_GENERATIONS}")
    assert "reference solution fails tests (test_" in exercise.verification_note
    [ready] = [m for m in await outbox(deps, course) if m["schema"] == "assessment.ready.v1"]
    assert ready["payload"]["exercise"]["verified"] is False
    assert ready["payload"]["exercise"]["verification_note"] == exercise.verification_note


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"starter_code": None}, "starter code already passes every test"),
        ({"reference_solution": "while True:\n    pass\n"}, "did not run to the end"),
        ({"starter_code": "def summarise(:\n"}, "starter code does not run"),
    ],
)
async def test_verification_problems_are_named(
    deps: Any, change: dict[str, Any], problem: str
) -> None:
    course = new_course()
    good = _offline_exercise()
    bad = {**good, **{k: v or good["reference_solution"] for k, v in change.items()}}
    deps.llm.overrides["coding_exercise"] = _scripted(bad, good)
    await service.assess_lesson(lesson_event(course), deps)
    [exercise] = await _exercise_rows(deps, course)
    assert exercise.verified is True and exercise.attempts == 2
    assert problem in exercise.verification["problems"][0]


async def test_a_harder_exercise_on_request_for_the_owner_only(deps: Any) -> None:
    course = new_course()
    await service.assess_lesson(lesson_event(course), deps)
    cmd = GenerateExercise(
        job_id="j-x",
        correlation_id="j-x",
        tenant_id="t-1",
        user_id="u-1",
        payload=GenerateExercisePayload(course_id=course, order=1, difficulty="harder"),
    )
    assert await service.generate_exercise(cmd, deps) is True
    assert await service.generate_exercise(cmd, deps) is False
    first, harder = await _exercise_rows(deps, course)
    assert harder.difficulty == "harder" and harder.verified is True
    assert harder.reference_solution != first.reference_solution
    [ready] = [m for m in await outbox(deps, course) if m["schema"] == "exercise.ready.v1"]
    assert ready["payload"]["exercise"]["exercise_id"] == harder.exercise_id
    announced = ready["payload"]["exercise"]  # what was stored, as the row says it
    assert (announced["difficulty"], announced["verified"], announced["attempts"]) == (
        harder.difficulty,
        harder.verified,
        harder.attempts,
    )
    assert announced["title"] == harder.title and announced["language"] == harder.language
    stranger = cmd.model_copy(update={"user_id": "u-2", "message_id": "other-" + course})
    with pytest.raises(PermanentError, match="no assessed lesson 1"):
        await service.generate_exercise(stranger, deps)


async def test_a_revised_lesson_gets_a_new_assessment(deps: Any) -> None:
    from services.assessment.queries import LessonQuery, get_lesson_assessment
    from shared.contracts.content import LessonRevised, LessonRevisedPayload

    course = new_course()
    written = lesson_event(course)
    await service.assess_lesson(written, deps)
    p = written.payload
    revised = LessonRevised(
        job_id="job-revise",
        correlation_id="job-revise",
        tenant_id="t-1",
        user_id="u-1",
        payload=LessonRevisedPayload(
            **{**p.model_dump(), "version": 2, "title": "Lists and loops, revised"},
            previous_version=1,
            feedback="More examples",
        ),
    )
    assert await service.assess_lesson(revised, deps) is True
    shown = await get_lesson_assessment(
        deps.sessionmaker, LessonQuery(user_id="u-1", tenant_id="t-1", course_id=course, order=1)
    )
    assert shown["lesson_version"] == 2 and shown["quiz"]["lesson_version"] == 2
    assert shown["quiz"]["title"] == "Quiz: Lists and loops, revised"
    ready = [m for m in await outbox(deps, course) if m["schema"] == "assessment.ready.v1"]
    assert [m["payload"]["lesson_version"] for m in ready] == [1, 2]
    assert ready[1]["job_id"] == "job-revise"
