"""Grading quiz attempts and code submissions, and recommending the next step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.assessment import grading, recommend, service
from services.assessment.queries import CourseQuery, QuizQuery, get_quiz
from services.assessment.store import exercises, quizzes
from shared.rpc import RpcError
from tests.assessment.conftest import lesson_event, new_course

GOOD_ANSWER = (
    "Start from the smallest working example, run it, then change one thing at a time and "
    "predict the result before running it again."
)


async def _assessed(deps: Any, lessons: int = 1) -> tuple[str, list[Any], list[Any]]:
    course = new_course()
    for order in range(1, lessons + 1):
        await service.assess_lesson(lesson_event(course, order), deps)
    async with deps.sessionmaker() as session:
        qs = list(
            await session.execute(
                select(quizzes).where(quizzes.c.course_id == course).order_by(quizzes.c.position)
            )
        )
        xs = list(
            await session.execute(
                select(exercises)
                .where(exercises.c.course_id == course)
                .order_by(exercises.c.position)
            )
        )
    return course, qs, xs


def _answers(quiz: Any, *, right: bool, open_text: str) -> list[grading.Answer]:
    out = []
    for q in quiz.questions:
        if q["kind"] == "choice":
            correct = next(i for i, o in enumerate(q["options"]) if o["correct"])
            choice = correct if right else (correct + 1) % len(q["options"])
            out.append(grading.Answer(question_id=q["question_id"], choice=choice))
        else:
            out.append(grading.Answer(question_id=q["question_id"], text=open_text))
    return out


async def _attempt(deps: Any, quiz: Any, answers: list[grading.Answer], user: str = "u-1") -> Any:
    query = grading.AttemptQuery(
        attempt_id=str(uuid.uuid4()),
        user_id=user,
        tenant_id="t-1",
        quiz_id=quiz.quiz_id,
        answers=answers,
    )
    return await grading.grade_attempt(deps.sessionmaker, deps, query)


async def _submit(deps: Any, exercise: Any, code: str, user: str = "u-1") -> dict[str, Any]:
    query = grading.SubmissionQuery(
        submission_id=str(uuid.uuid4()),
        user_id=user,
        tenant_id="t-1",
        exercise_id=exercise.exercise_id,
        code=code,
    )
    return await grading.grade_submission(deps.sessionmaker, deps.sandbox, query)


async def test_right_wrong_and_partial_answers(deps: Any) -> None:
    _, [quiz], _ = await _assessed(deps)
    total = float(len(quiz.questions))
    right = await _attempt(deps, quiz, _answers(quiz, right=True, open_text=GOOD_ANSWER))
    assert right["score"] == right["max_score"] == total and right["percent"] == 100
    assert all(r["feedback"] for r in right["results"])
    graded_open = [c for c in deps.llm.calls if c["task"] == "grade_answer"]
    assert len(graded_open) == 1 and "rubric:" in graded_open[0]["messages"][-1]["content"]

    wrong = await _attempt(deps, quiz, _answers(quiz, right=False, open_text="no idea"))
    assert wrong["score"] < 0.5
    for result in wrong["results"]:
        if result["kind"] == "choice":
            assert result["correct"] is False and result["explanation"]
            assert result["feedback"].startswith("Not quite")

    partial = await _attempt(
        deps, quiz, _answers(quiz, right=True, open_text="run the smallest example")
    )
    [open_result] = [r for r in partial["results"] if r["kind"] == "open"]
    assert 0 < open_result["score"] < 1
    assert total - 1 < partial["score"] < total

    unanswered = await _attempt(deps, quiz, _answers(quiz, right=True, open_text="")[:1])
    assert unanswered["score"] == 1.0
    assert sum(r["feedback"] == "Not answered." for r in unanswered["results"]) == total - 1

    seen = await get_quiz(
        deps.sessionmaker, QuizQuery(user_id="u-1", tenant_id="t-1", quiz_id=quiz.quiz_id)
    )
    assert [a["score"] for a in seen["attempts"]] == [
        right["score"],
        wrong["score"],
        partial["score"],
        unanswered["score"],
    ]
    assert "correct" not in str(seen["questions"]) and "rubric" not in str(seen["questions"])


async def test_another_users_quiz_is_not_found(deps: Any) -> None:
    _, [quiz], _ = await _assessed(deps)
    with pytest.raises(RpcError) as caught:
        await _attempt(deps, quiz, _answers(quiz, right=True, open_text="x"), user="u-2")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("answer", "field", "words"),
    [
        ({"question_id": "q99", "choice": 0}, "answers[0].question_id", "no question 'q99'"),
        ({"question_id": "q1", "choice": 9}, "answers[0].choice", "has options 0 to"),
        ({"question_id": "q1", "text": "hi"}, "answers[0].choice", "multiple choice"),
    ],
)
async def test_malformed_answers_are_422_naming_the_field(
    deps: Any, answer: dict[str, Any], field: str, words: str
) -> None:
    _, [quiz], _ = await _assessed(deps)
    with pytest.raises(RpcError) as caught:
        await _attempt(deps, quiz, [grading.Answer(**answer)])
    assert caught.value.status == 422
    assert caught.value.detail.startswith(field) and words in caught.value.detail


async def test_code_submissions_get_per_test_results(deps: Any) -> None:
    _, _, [exercise] = await _assessed(deps)
    right = await _submit(deps, exercise, exercise.reference_solution)
    assert right["all_passed"] and right["passed"] == right["total"] >= 2
    assert {t["suite"] for t in right["tests"]} == {"visible", "hidden"}

    wrong_code = exercise.reference_solution.replace("if count else 0.0", "if count else 1.0")
    wrong = await _submit(deps, exercise, wrong_code)
    assert wrong["status"] == "completed" and not wrong["all_passed"]
    [failed] = [t for t in wrong["tests"] if t["status"] == "failed"]
    assert failed["suite"] == "hidden" and failed["message"] == "A hidden check did not hold."

    looping = await _submit(
        deps, exercise, "def summarise(values):\n    while True:\n        pass\n"
    )
    assert looping["status"] == "cpu_limit" and "CPU" in looping["reason"]
    assert looping["passed"] == 0 and looping["total"] == right["total"]  # not only those run
    again = await _submit(deps, exercise, exercise.reference_solution)  # still serving
    assert again["all_passed"]
    with pytest.raises(RpcError) as caught:
        await _submit(deps, exercise, exercise.reference_solution, user="u-2")
    assert caught.value.status == 404


def _course_query(course: str) -> CourseQuery:
    return CourseQuery(user_id="u-1", tenant_id="t-1", course_id=course)


async def test_recommendations_follow_the_learners_attempts(deps: Any) -> None:
    course, quizzes_, exercises_ = await _assessed(deps, lessons=2)
    rec = await recommend.recommend(deps.sessionmaker, _course_query(course))
    assert rec["action"] == "take_quiz" and rec["lesson"]["order"] == 1

    await _attempt(deps, quizzes_[0], _answers(quizzes_[0], right=False, open_text="no"))
    rec = await recommend.recommend(deps.sessionmaker, _course_query(course))
    assert rec["action"] == "revise_lesson" and rec["lesson"]["order"] == 1
    assert "You scored 0% on the quiz of lesson 1" in rec["reason"]

    await _attempt(deps, quizzes_[0], _answers(quizzes_[0], right=True, open_text=GOOD_ANSWER))
    rec = await recommend.recommend(deps.sessionmaker, _course_query(course))
    assert rec["action"] == "try_exercise" and rec["exercise_id"] == exercises_[0].exercise_id

    for _ in range(3):
        await _submit(deps, exercises_[0], "def summarise(values):\n    return {}\n")
    rec = await recommend.recommend(deps.sessionmaker, _course_query(course))
    assert rec["action"] == "easier_exercise" and rec["difficulty"] == "easier"
    assert "3 submissions" in rec["reason"]

    await _submit(deps, exercises_[0], exercises_[0].reference_solution)
    rec = await recommend.recommend(deps.sessionmaker, _course_query(course))
    assert rec["action"] == "move_on" and rec["lesson"]["order"] == 2

    await _attempt(deps, quizzes_[1], _answers(quizzes_[1], right=True, open_text=GOOD_ANSWER))
    await _submit(deps, exercises_[1], exercises_[1].reference_solution)
    rec = await recommend.recommend(deps.sessionmaker, _course_query(course))
    assert rec["action"] == "harder_exercise" and rec["lesson"]["order"] == 2
    assert "first try" in rec["reason"]
    assert [e["quiz_percent"] for e in rec["evidence"]] == [100, 100]


async def test_no_recommendation_for_another_users_course(deps: Any) -> None:
    course, _, _ = await _assessed(deps)
    with pytest.raises(RpcError) as caught:
        await recommend.recommend(
            deps.sessionmaker, CourseQuery(user_id="u-2", tenant_id="t-1", course_id=course)
        )
    assert caught.value.status == 404
