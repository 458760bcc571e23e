"""Assessment logic, testable without a broker: explicit dependencies in, effects out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.assessment import prompts
from services.assessment.drafts import QuizDraft
from services.assessment.exercises import WrittenExercise, exercise_plan, write_exercise
from services.assessment.sandbox import Sandbox
from services.assessment.store import exercises, lessons, metadata, quizzes
from shared.contracts.assessment import (
    AssessmentReady,
    AssessmentReadyPayload,
    ExerciseReady,
    ExerciseReadyPayload,
    ExerciseSummary,
    GenerateExercise,
)
from shared.contracts.content import LessonRevised, LessonWritten
from shared.db import WorkLease, claim_message
from shared.generation import complete
from shared.ids import derived_id
from shared.llm.prompts import PromptSource
from shared.messaging import PermanentError
from shared.outbox import enqueue

ASSESS_CONSUMER = "assessment.assess_lesson"
EXERCISE_CONSUMER = "assessment.generate_exercise"


@dataclass
class AssessmentDeps:
    """What the assessment logic needs (explicit, so it is testable alone)."""

    sessionmaker: Any
    llm: Any
    sandbox: Sandbox
    wake_relay: Any
    prompts: PromptSource


def quiz_id_for(lesson_id: str, version: int) -> str:
    return derived_id("quiz", lesson_id, str(version))


def exercise_id_for(lesson_id: str, version: int) -> str:
    """The id of the exercise written with a lesson version's assessment."""
    return derived_id("exercise", lesson_id, str(version))


def question_list(draft: QuizDraft) -> list[dict[str, Any]]:
    """The quiz's questions as stored: numbered ids, kinds, answer keys kept."""
    questions: list[dict[str, Any]] = []
    for mc in draft.multiple_choice:
        questions.append(
            {
                "question_id": f"q{len(questions) + 1}",
                "kind": "choice",
                "question": mc.question,
                "options": [o.model_dump() for o in mc.options],
            }
        )
    for open_q in draft.open_questions:
        questions.append(
            {
                "question_id": f"q{len(questions) + 1}",
                "kind": "open",
                "question": open_q.question,
                "model_answer": open_q.model_answer,
                "rubric": open_q.rubric,
            }
        )
    return questions


async def assess_lesson(event: LessonWritten | LessonRevised, deps: AssessmentDeps) -> bool:
    """Write the lesson's quiz and (when it has code) a verified exercise; announce them.

    A revised lesson (``lesson.revised``) is a new version: it gets its own assessment,
    so the quiz asks about what the lesson now says.

    Returns False for a redelivery. A second announcement of a lesson version already
    assessed generates nothing: it re-announces the stored assessment.
    """
    p = event.payload
    async with WorkLease(deps.sessionmaker, metadata, ASSESS_CONSUMER, event.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            stored = await _stored_lesson(session, p.lesson_id, p.version)
        if stored is None:
            lesson = {
                "lesson_id": p.lesson_id,
                "course_id": p.course_id,
                "position": p.order,
                "title": p.title,
                "markdown": p.markdown,
                "profile": p.profile.model_dump(mode="json") if p.profile else None,
            }
            quiz, exercise = await _write(event, deps, lesson)
            await _store(event, deps, quiz, exercise)
        else:
            async with deps.sessionmaker() as session, session.begin():
                if await claim_message(session, metadata, ASSESS_CONSUMER, event.message_id):
                    await _announce_stored(session, event, stored)
    deps.wake_relay()
    return True


async def _write(
    event: LessonWritten | LessonRevised, deps: AssessmentDeps, lesson: dict[str, Any]
) -> tuple[tuple[QuizDraft, Any], WrittenExercise | str]:
    """The quiz and the exercise (or why there is none), written concurrently."""
    wants_exercise, why_not = exercise_plan(lesson["markdown"])
    quiz_call = complete(
        deps,
        task="quiz",
        prompt=prompts.QUIZ,
        variables=prompts.quiz_variables(lesson),
        subject=lesson["course_id"],
        step=f"quiz:{lesson['position']}",
        schema=QuizDraft,
        job_id=event.job_id,
        course_id=lesson["course_id"],
    )
    if not wants_exercise:
        return await quiz_call, why_not
    quiz, exercise = await asyncio.gather(
        quiz_call,
        write_exercise(deps, event, deps.sandbox, lesson, difficulty="standard"),
    )
    return quiz, exercise


async def _store(
    event: LessonWritten | LessonRevised,
    deps: AssessmentDeps,
    quiz: tuple[QuizDraft, Any],
    exercise: WrittenExercise | str,
) -> None:
    """The lesson as assessed, its quiz and exercise, and assessment.ready: one transaction.

    assessment.ready says what was just stored (the rows' values), not read back."""
    p = event.payload
    draft, result = quiz
    quiz_id = quiz_id_for(p.lesson_id, p.version)
    owner = {"tenant_id": event.tenant_id, "user_id": event.user_id}
    exercise_row = (
        None
        if isinstance(exercise, str)
        else _exercise_row(
            exercise,
            exercise_id_for(p.lesson_id, p.version),
            p.lesson_id,
            p.course_id,
            p.order,
            owner,
        )
    )
    lesson_row = {
        "lesson_id": p.lesson_id,
        "version": p.version,
        "course_id": p.course_id,
        "module_id": p.module_id,
        "position": p.order,
        "title": p.title,
        "markdown": p.markdown,
        "profile": p.profile.model_dump(mode="json") if p.profile else None,
        "quiz_id": quiz_id,
        "exercise_id": exercise_row["exercise_id"] if exercise_row is not None else None,
        "exercise_note": exercise if isinstance(exercise, str) else "",
        **owner,
    }
    quiz_row = {
        "quiz_id": quiz_id,
        "lesson_id": p.lesson_id,
        "lesson_version": p.version,
        "course_id": p.course_id,
        "position": p.order,
        "title": draft.title,
        "questions": question_list(draft),
        "model": result.model,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        **owner,
    }
    async with deps.sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, ASSESS_CONSUMER, event.message_id):
            return
        created = await session.execute(
            insert(lessons)
            .values(**lesson_row)
            .on_conflict_do_nothing()
            .returning(lessons.c.lesson_id)
        )
        if created.first() is None:
            # another announcement of this lesson version stored it first: say what it stored
            stored = await _stored_lesson(session, p.lesson_id, p.version)
            assert stored is not None
            await _announce_stored(session, event, stored)
            return
        await session.execute(insert(quizzes).values(**quiz_row))
        if exercise_row is not None:
            await _insert_exercise(session, exercise_row)
        assessed = SimpleNamespace(
            **lesson_row,
            questions=quiz_row["questions"],
            quiz_input_tokens=result.input_tokens,
            quiz_output_tokens=result.output_tokens,
        )
        exercise_stored = SimpleNamespace(**exercise_row) if exercise_row is not None else None
        await _announce(session, event, assessed, exercise_stored)


def _exercise_row(
    exercise: WrittenExercise,
    exercise_id: str,
    lesson_id: str,
    course_id: str,
    position: int,
    owner: dict[str, Any],
    difficulty: str = "standard",
) -> dict[str, Any]:
    """An exercise's row as stored."""
    d = exercise.draft
    return {
        "exercise_id": exercise_id,
        "lesson_id": lesson_id,
        "course_id": course_id,
        "position": position,
        "difficulty": difficulty,
        "title": d.title,
        "language": d.language,
        "statement": d.statement,
        "starter_code": d.starter_code,
        "reference_solution": d.reference_solution,
        "visible_tests": d.visible_tests,
        "hidden_tests": d.hidden_tests,
        "hints": d.hints,
        "verified": exercise.verified,
        "verification_note": exercise.note,
        "verification": {"runs": exercise.runs, "problems": exercise.problems},
        "attempts": exercise.generations,
        "model": exercise.model,
        "input_tokens": exercise.input_tokens,
        "output_tokens": exercise.output_tokens,
        **owner,
    }


async def _insert_exercise(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(insert(exercises).values(**row).on_conflict_do_nothing())


async def _stored_lesson(session: AsyncSession, lesson_id: str, version: int) -> Row[Any] | None:
    """The assessed lesson version joined with its quiz (and exercise) figures."""
    result = await session.execute(
        select(
            lessons,
            quizzes.c.questions,
            quizzes.c.input_tokens.label("quiz_input_tokens"),
            quizzes.c.output_tokens.label("quiz_output_tokens"),
        )
        .join(quizzes, quizzes.c.quiz_id == lessons.c.quiz_id)
        .where(lessons.c.lesson_id == lesson_id, lessons.c.version == version)
    )
    return result.first()


async def _exercise_summary(session: AsyncSession, exercise_id: str | None) -> Any:
    if exercise_id is None:
        return None
    row = (
        await session.execute(select(exercises).where(exercises.c.exercise_id == exercise_id))
    ).first()
    return row


def summary(row: Any) -> ExerciseSummary:
    """An exercise as events describe it (from its row, read back or as just stored)."""
    return ExerciseSummary(
        exercise_id=row.exercise_id,
        title=row.title,
        language=row.language,
        difficulty=row.difficulty,
        verified=row.verified,
        verification_note=row.verification_note,
        attempts=row.attempts,
    )


async def _announce_stored(
    session: AsyncSession, event: LessonWritten | LessonRevised, stored: Row[Any]
) -> None:
    """assessment.ready for an assessment read back from the store."""
    await _announce(session, event, stored, await _exercise_summary(session, stored.exercise_id))


async def _announce(
    session: AsyncSession, event: LessonWritten | LessonRevised, stored: Any, exercise: Any
) -> None:
    """assessment.ready for an assessed lesson and its exercise (None without one): rows
    read back, or the values just stored, which have the same names."""
    kinds = [q["kind"] for q in stored.questions]
    await enqueue(
        session,
        metadata,
        event.follow(
            AssessmentReady,
            AssessmentReadyPayload(
                course_id=stored.course_id,
                module_id=stored.module_id,
                lesson_id=stored.lesson_id,
                order=stored.position,
                lesson_version=stored.version,
                quiz_id=stored.quiz_id,
                multiple_choice=kinds.count("choice"),
                open_questions=kinds.count("open"),
                exercise=summary(exercise) if exercise is not None else None,
                exercise_note=stored.exercise_note,
                input_tokens=stored.quiz_input_tokens + (exercise.input_tokens if exercise else 0),
                output_tokens=stored.quiz_output_tokens
                + (exercise.output_tokens if exercise else 0),
            ),
            message_id=derived_id(event.message_id, "assessment_ready"),
        ),
    )


async def latest_assessed_lesson(
    session: AsyncSession, course_id: str, order: int
) -> Row[Any] | None:
    """The latest assessed version of the lesson at ``order`` of a course."""
    result = await session.execute(
        select(lessons)
        .where(lessons.c.course_id == course_id, lessons.c.position == order)
        .order_by(lessons.c.version.desc())
        .limit(1)
    )
    return result.first()


async def generate_exercise(cmd: GenerateExercise, deps: AssessmentDeps) -> bool:
    """Write and verify an extra exercise for a lesson at the asked difficulty.

    Returns False for a redelivery. Only the lesson's owner may ask.
    """
    p = cmd.payload
    async with WorkLease(deps.sessionmaker, metadata, EXERCISE_CONSUMER, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            row = await latest_assessed_lesson(session, p.course_id, p.order)
        if row is None or row.user_id != cmd.user_id or row.tenant_id != cmd.tenant_id:
            raise PermanentError(f"no assessed lesson {p.order} in course {p.course_id}")
        if exercise_plan(row.markdown)[0] is False:
            raise PermanentError(f"lesson {p.order} has no exercises: {row.exercise_note}")
        lesson = {
            "lesson_id": row.lesson_id,
            "course_id": row.course_id,
            "position": row.position,
            "title": row.title,
            "markdown": row.markdown,
            "profile": row.profile,
        }
        written = await write_exercise(deps, cmd, deps.sandbox, lesson, difficulty=p.difficulty)
        exercise_id = derived_id("exercise", cmd.message_id)
        async with deps.sessionmaker() as session, session.begin():
            if not await claim_message(session, metadata, EXERCISE_CONSUMER, cmd.message_id):
                return False
            owner = {"tenant_id": row.tenant_id, "user_id": row.user_id}
            exercise_row = _exercise_row(
                written,
                exercise_id,
                row.lesson_id,
                row.course_id,
                row.position,
                owner,
                difficulty=p.difficulty,
            )
            await _insert_exercise(session, exercise_row)
            await enqueue(
                session,
                metadata,
                cmd.follow(
                    ExerciseReady,
                    ExerciseReadyPayload(
                        course_id=row.course_id,
                        lesson_id=row.lesson_id,
                        order=row.position,
                        exercise=summary(SimpleNamespace(**exercise_row)),
                        input_tokens=written.input_tokens,
                        output_tokens=written.output_tokens,
                    ),
                    message_id=derived_id(cmd.message_id, "exercise_ready"),
                ),
            )
    deps.wake_relay()
    return True
