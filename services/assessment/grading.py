"""Grading: quiz attempts (choices deterministically, open answers by the LLM against the
rubric) and code submissions (the exercise's tests in the sandbox). Both are stored per user.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.assessment import prompts
from services.assessment.drafts import GradeDraft
from services.assessment.exercises import suites
from services.assessment.store import attempts, exercises, lessons, quizzes, submissions
from shared.generation import PromptedLLM, complete
from shared.rpc import RpcError, not_found

MAX_ANSWER_CHARS = 4000
MAX_CODE_CHARS = 50_000


class Answer(BaseModel):
    """One answer of an attempt: a choice for a multiple-choice question, text otherwise."""

    question_id: str = Field(min_length=1, max_length=20, examples=["q1"])
    choice: int | None = Field(None, ge=0, description="Index of the chosen option, from 0.")
    text: str | None = Field(None, max_length=MAX_ANSWER_CHARS, description="An open answer.")


class AttemptQuery(BaseModel):
    """Body of ``assessment.rpc.grade_attempt``."""

    attempt_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    quiz_id: str = Field(min_length=1)
    job_id: str | None = None
    answers: list[Answer] = Field(max_length=50)


class SubmissionQuery(BaseModel):
    """Body of ``assessment.rpc.grade_submission``."""

    submission_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    exercise_id: str = Field(min_length=1)
    code: str = Field(max_length=MAX_CODE_CHARS)


def _invalid(field: str, message: str) -> RpcError:
    return RpcError(422, f"{field}: {message}")


def _check_answers(questions: list[dict[str, Any]], answers: list[Answer]) -> dict[str, Answer]:
    """Answers by question id; a 422 naming the field for anything that does not fit."""
    by_id = {q["question_id"]: q for q in questions}
    given: dict[str, Answer] = {}
    for index, answer in enumerate(answers):
        field = f"answers[{index}]"
        question = by_id.get(answer.question_id)
        if question is None:
            known = ", ".join(by_id)
            raise _invalid(
                f"{field}.question_id", f"no question {answer.question_id!r} in this quiz ({known})"
            )
        if answer.question_id in given:
            raise _invalid(f"{field}.question_id", f"{answer.question_id} is answered twice")
        if question["kind"] == "choice":
            last = len(question["options"]) - 1
            if answer.choice is None:
                raise _invalid(
                    f"{field}.choice",
                    f"{answer.question_id} is multiple choice: give the index of one option "
                    f"(0 to {last})",
                )
            if answer.choice > last:
                raise _invalid(f"{field}.choice", f"{answer.question_id} has options 0 to {last}")
        elif answer.text is None:
            raise _invalid(f"{field}.text", f"{answer.question_id} is an open question: give text")
        given[answer.question_id] = answer
    return given


def _grade_choice(question: dict[str, Any], answer: Answer | None) -> dict[str, Any]:
    options = question["options"]
    correct = next(i for i, o in enumerate(options) if o["correct"])
    base = {
        "question_id": question["question_id"],
        "kind": "choice",
        "max_score": 1.0,
        "correct_choice": correct,
        "explanation": options[correct]["explanation"],
    }
    if answer is None:
        return {**base, "score": 0.0, "correct": False, "choice": None, "feedback": "Not answered."}
    right = answer.choice == correct
    return {
        **base,
        "score": 1.0 if right else 0.0,
        "correct": right,
        "choice": answer.choice,
        "feedback": options[answer.choice or 0]["explanation"],
    }


async def _grade_open(
    deps: PromptedLLM,
    question: dict[str, Any],
    answer: Answer | None,
    profile: Any,
    job_id: str,
    course_id: str,
) -> dict[str, Any]:
    base = {
        "question_id": question["question_id"],
        "kind": "open",
        "max_score": 1.0,
        "model_answer": question["model_answer"],
    }
    text = (answer.text or "").strip() if answer else ""
    if not text:
        return {**base, "score": 0.0, "text": text, "feedback": "Not answered."}
    grade, _ = await complete(
        deps,
        task="grade_answer",
        prompt=prompts.GRADE,
        variables=prompts.grade_variables(question, text, profile),
        subject=course_id,
        step=f"grade:{question['question_id']}",
        schema=GradeDraft,
        job_id=job_id,
        course_id=course_id,
    )
    return {**base, "score": round(grade.score, 2), "text": text, "feedback": grade.feedback}


async def grade_attempt(
    sessionmaker: Any, deps: PromptedLLM, query: AttemptQuery
) -> dict[str, Any]:
    """Grade and store one attempt at a quiz; the same attempt_id again returns it as stored.

    Open answers are graded by the LLM (``deps``: the client and the prompts).
    """
    async with sessionmaker() as session:
        quiz = (
            await session.execute(
                select(quizzes, lessons.c.profile)
                .join(
                    lessons,
                    (lessons.c.lesson_id == quizzes.c.lesson_id)
                    & (lessons.c.version == quizzes.c.lesson_version),
                )
                .where(quizzes.c.quiz_id == query.quiz_id)
            )
        ).first()
        previous = (
            await session.execute(select(attempts).where(attempts.c.attempt_id == query.attempt_id))
        ).first()
    if quiz is None or quiz.user_id != query.user_id or quiz.tenant_id != query.tenant_id:
        raise not_found(f"quiz {query.quiz_id}")
    if previous is not None:
        if previous.user_id != query.user_id or previous.quiz_id != query.quiz_id:
            raise RpcError(409, f"attempt {query.attempt_id} belongs to another quiz")
        return attempt_json(previous)
    given = _check_answers(quiz.questions, query.answers)
    job_id = query.job_id or query.attempt_id

    async def grade(question: dict[str, Any]) -> dict[str, Any]:
        answer = given.get(question["question_id"])
        if question["kind"] == "choice":
            return _grade_choice(question, answer)
        return await _grade_open(deps, question, answer, quiz.profile, job_id, quiz.course_id)

    results = list(await asyncio.gather(*(grade(q) for q in quiz.questions)))
    score = round(sum(r["score"] for r in results), 2)
    max_score = float(sum(r["max_score"] for r in results))
    row = await _store_once(
        sessionmaker,
        attempts.c.attempt_id,
        dict(
            attempt_id=query.attempt_id,
            quiz_id=quiz.quiz_id,
            course_id=quiz.course_id,
            position=quiz.position,
            tenant_id=query.tenant_id,
            user_id=query.user_id,
            answers=[a.model_dump() for a in query.answers],
            results=results,
            score=score,
            max_score=max_score,
        ),
    )
    return attempt_json(row)


async def _store_once(sessionmaker: Any, key: Any, values: dict[str, Any]) -> Any:
    """Insert a graded row unless its id exists; the stored row either way (a retry gets it)."""
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(key.table).values(**values).on_conflict_do_nothing())
        return (await session.execute(select(key.table).where(key == values[key.name]))).one()


def attempt_json(row: Any) -> dict[str, Any]:
    """A stored attempt as the API returns it."""
    return {
        "attempt_id": row.attempt_id,
        "quiz_id": row.quiz_id,
        "course_id": row.course_id,
        "order": row.position,
        "score": row.score,
        "max_score": row.max_score,
        "percent": round(100 * row.score / row.max_score) if row.max_score else 0,
        "results": row.results,
        "created_at": row.created_at.isoformat(),
    }


def _learner_test(test: dict[str, Any]) -> dict[str, Any]:
    """A test result as the learner sees it: hidden checks do not give their assertion away."""
    shown = dict(test)
    if test["suite"] == "hidden" and test["status"] == "failed":
        shown["message"] = "A hidden check did not hold."
    return shown


async def grade_submission(
    sessionmaker: Any, sandbox: Any, query: SubmissionQuery
) -> dict[str, Any]:
    """Run the exercise's visible and hidden tests on the learner's code; store the result."""
    async with sessionmaker() as session:
        exercise = (
            await session.execute(
                select(exercises).where(exercises.c.exercise_id == query.exercise_id)
            )
        ).first()
        previous = (
            await session.execute(
                select(submissions).where(submissions.c.submission_id == query.submission_id)
            )
        ).first()
    if (
        exercise is None
        or exercise.user_id != query.user_id
        or exercise.tenant_id != query.tenant_id
    ):
        raise not_found(f"exercise {query.exercise_id}")
    if previous is not None:
        return submission_json(previous)
    if not query.code.strip():
        raise _invalid("code", "is empty: submit your solution's source code")
    tests = suites(exercise.visible_tests, exercise.hidden_tests)
    try:
        result = await sandbox.run(query.code, tests)
    except ValueError as exc:  # past the sandbox's size caps
        raise _invalid("code", str(exc)) from exc
    # a run stopped early lists only the tests it reached; the rest count as not passed
    declared = sum(len(names) for names in sandbox.discover(tests).values())
    outcome = {
        "status": result.status,
        "reason": result.reason,
        "output": result.output,
        "duration_ms": round(result.duration_ms, 1),
        "tests": [_learner_test(t) for t in result.to_json()["tests"]],
    }
    row = await _store_once(
        sessionmaker,
        submissions.c.submission_id,
        dict(
            submission_id=query.submission_id,
            exercise_id=exercise.exercise_id,
            course_id=exercise.course_id,
            position=exercise.position,
            tenant_id=query.tenant_id,
            user_id=query.user_id,
            code=query.code,
            status=result.status,
            passed=result.passed,
            total=max(declared, len(result.tests)),
            results=outcome,
        ),
    )
    return submission_json(row)


def submission_json(row: Any) -> dict[str, Any]:
    """A stored submission as the API returns it."""
    return {
        "submission_id": row.submission_id,
        "exercise_id": row.exercise_id,
        "course_id": row.course_id,
        "order": row.position,
        "passed": row.passed,
        "total": row.total,
        "all_passed": row.status == "completed" and row.total > 0 and row.passed == row.total,
        **row.results,
        "created_at": row.created_at.isoformat(),
    }
