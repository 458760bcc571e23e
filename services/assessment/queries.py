"""What a learner may read: quizzes without answer keys, exercises without solutions.

The one exception, ``export_quizzes``, gives the course's owner the keys for LMS exports.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from services.assessment.drafts import declared_tests
from services.assessment.store import attempts, exercises, lessons, quizzes, submissions
from shared.rpc import not_found


class Caller(BaseModel):
    user_id: str = Field(min_length=1, description="Who asks; only the owner gets answers.")
    tenant_id: str = Field(min_length=1)


class QuizQuery(Caller):
    quiz_id: str = Field(min_length=1)


class ExerciseQuery(Caller):
    exercise_id: str = Field(min_length=1)


class LessonQuery(Caller):
    course_id: str = Field(min_length=1)
    order: int = Field(ge=1)


class CourseQuery(Caller):
    course_id: str = Field(min_length=1)


def _owned(row: Any, who: Caller) -> bool:
    return row is not None and row.user_id == who.user_id and row.tenant_id == who.tenant_id


def learner_question(question: dict[str, Any]) -> dict[str, Any]:
    """A question without its answer key."""
    shown = {k: question[k] for k in ("question_id", "kind", "question")}
    if question["kind"] == "choice":
        shown["options"] = [o["text"] for o in question["options"]]
    return shown


def quiz_json(row: Any) -> dict[str, Any]:
    return {
        "quiz_id": row.quiz_id,
        "course_id": row.course_id,
        "lesson_id": row.lesson_id,
        "lesson_version": row.lesson_version,
        "order": row.position,
        "title": row.title,
        "questions": [learner_question(q) for q in row.questions],
    }


def exercise_json(row: Any) -> dict[str, Any]:
    """An exercise without its reference solution or hidden tests (only how many)."""
    return {
        "exercise_id": row.exercise_id,
        "course_id": row.course_id,
        "lesson_id": row.lesson_id,
        "order": row.position,
        "title": row.title,
        "language": row.language,
        "difficulty": row.difficulty,
        "statement": row.statement,
        "starter_code": row.starter_code,
        "visible_tests": row.visible_tests,
        "hidden_test_count": len(declared_tests(row.hidden_tests, "hidden_tests")),
        "hints": row.hints,
        "verified": row.verified,
        "verification_note": row.verification_note,
        "created_at": row.created_at.isoformat(),
    }


async def get_quiz(sessionmaker: Any, query: QuizQuery) -> dict[str, Any]:
    async with sessionmaker() as session:
        row = (
            await session.execute(select(quizzes).where(quizzes.c.quiz_id == query.quiz_id))
        ).first()
        if not _owned(row, query):
            raise not_found(f"quiz {query.quiz_id}")
        tried = await session.execute(
            select(attempts.c.attempt_id, attempts.c.score, attempts.c.max_score)
            .where(attempts.c.quiz_id == query.quiz_id, attempts.c.user_id == query.user_id)
            .order_by(attempts.c.created_at)
        )
        history = [
            {"attempt_id": a.attempt_id, "score": a.score, "max_score": a.max_score} for a in tried
        ]
    return {**quiz_json(row), "attempts": history}


async def get_exercise(sessionmaker: Any, query: ExerciseQuery) -> dict[str, Any]:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(exercises).where(exercises.c.exercise_id == query.exercise_id)
            )
        ).first()
        if not _owned(row, query):
            raise not_found(f"exercise {query.exercise_id}")
        tried = await session.execute(
            select(submissions.c.submission_id, submissions.c.passed, submissions.c.total)
            .where(
                submissions.c.exercise_id == query.exercise_id,
                submissions.c.user_id == query.user_id,
            )
            .order_by(submissions.c.created_at)
        )
        history = [
            {"submission_id": s.submission_id, "passed": s.passed, "total": s.total} for s in tried
        ]
    return {**exercise_json(row), "submissions": history}


async def get_lesson_assessment(sessionmaker: Any, query: LessonQuery) -> dict[str, Any]:
    """The latest assessed version of a lesson: its quiz and every exercise written for it."""
    async with sessionmaker() as session:
        lesson = (
            await session.execute(
                select(lessons)
                .where(lessons.c.course_id == query.course_id, lessons.c.position == query.order)
                .order_by(lessons.c.version.desc())
                .limit(1)
            )
        ).first()
        if not _owned(lesson, query):
            raise not_found(f"assessment of lesson {query.order} of course {query.course_id}")
        quiz = (
            await session.execute(select(quizzes).where(quizzes.c.quiz_id == lesson.quiz_id))
        ).one()
        rows = await session.execute(
            select(exercises)
            .where(exercises.c.lesson_id == lesson.lesson_id)
            .order_by(exercises.c.created_at)
        )
        return {
            "course_id": lesson.course_id,
            "lesson_id": lesson.lesson_id,
            "lesson_version": lesson.version,
            "order": lesson.position,
            "title": lesson.title,
            "quiz": quiz_json(quiz),
            "exercises": [exercise_json(r) for r in rows],
            "exercise_note": lesson.exercise_note,
        }


async def export_quizzes(sessionmaker: Any, query: CourseQuery) -> list[dict[str, Any]]:
    """Every quiz of the caller's course with its answer key, for the owner's LMS exports.

    One quiz per lesson position, the one written for the latest assessed version of the
    lesson, in course order; each question as stored (options with ``correct`` and
    ``explanation``, or ``model_answer`` and ``rubric``). Someone else's course, or one
    with nothing assessed yet, gives an empty list: the gateway has already answered 404
    to a caller who does not own the course (the planner's ``get_course``).
    """
    latest = (
        select(lessons.c.quiz_id)
        .where(
            lessons.c.course_id == query.course_id,
            lessons.c.user_id == query.user_id,
            lessons.c.tenant_id == query.tenant_id,
        )
        .distinct(lessons.c.position)
        .order_by(lessons.c.position, lessons.c.version.desc(), lessons.c.created_at.desc())
        .subquery()
    )
    async with sessionmaker() as session:
        rows = await session.execute(
            select(quizzes)
            .join(latest, quizzes.c.quiz_id == latest.c.quiz_id)
            .where(quizzes.c.user_id == query.user_id, quizzes.c.tenant_id == query.tenant_id)
            .order_by(quizzes.c.position)
        )
        return [
            {
                "order": row.position,
                "lesson_id": row.lesson_id,
                "lesson_version": row.lesson_version,
                "quiz_id": row.quiz_id,
                "title": row.title,
                "questions": row.questions,
            }
            for row in rows
        ]
