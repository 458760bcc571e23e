"""The course process against the real PostgreSQL: counting, duplicates, failures."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.planner import course_process, finalise, service
from services.planner.store import courses, metadata, modules
from shared.contracts.assessment import AssessmentReady, AssessmentReadyPayload, ExerciseSummary
from shared.contracts.content import LessonWritten, LessonWrittenPayload, WriteLesson
from shared.contracts.jobs import JobFailed, JobFailedPayload
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    PlanCourse,
    PlanCoursePayload,
)
from shared.outbox import outbox_table
from tests.planner.conftest import envelope

pytestmark = pytest.mark.integration


async def finalised_course(deps: Any) -> tuple[str, list[Any]]:
    course_id = str(uuid.uuid4())
    plan = PlanCourse(
        **envelope(), payload=PlanCoursePayload(course_id=course_id, topic="Go", duration_hours=6)
    )
    await service.plan_course(plan, deps)
    finalize = FinalizeCourse(**envelope(), payload=FinalizeCoursePayload(course_id=course_id))
    assert await finalise.finalize_course(finalize, deps) is True
    assert await finalise.finalize_course(finalize, deps) is False  # redelivery
    async with deps.sessionmaker() as session:
        rows = (
            await session.execute(
                select(modules).where(modules.c.course_id == course_id).order_by(modules.c.position)
            )
        ).all()
    return course_id, rows


def written(course_id: str, module: Any, message_id: str | None = None) -> LessonWritten:
    return LessonWritten(
        **envelope(),
        **({"message_id": message_id} if message_id else {}),
        payload=LessonWrittenPayload(
            course_id=course_id,
            module_id=module.module_id,
            lesson_id=f"lesson-{module.position}",
            order=module.position,
            title=module.title,
            version=1,
            markdown="# x",
            model="m",
            input_tokens=1,
            output_tokens=1,
        ),
    )


def assessed(course_id: str, module: Any, message_id: str | None = None) -> AssessmentReady:
    return AssessmentReady(
        **envelope(),
        **({"message_id": message_id} if message_id else {}),
        payload=AssessmentReadyPayload(
            course_id=course_id,
            module_id=module.module_id,
            lesson_id=f"lesson-{module.position}",
            order=module.position,
            lesson_version=1,
            quiz_id=f"quiz-{module.position}",
            multiple_choice=3,
            open_questions=1,
            exercise=ExerciseSummary(
                exercise_id=f"exercise-{module.position}",
                title="x",
                language="python",
                difficulty="standard",
                verified=True,
                attempts=1,
            ),
            input_tokens=1,
            output_tokens=1,
        ),
    )


async def outbox(deps: Any, course_id: str) -> list[str]:
    return [schema for schema, _ in await outbox_bodies(deps, course_id)]


async def outbox_bodies(deps: Any, course_id: str) -> list[tuple[str, dict[str, Any]]]:
    table = outbox_table(metadata)
    async with deps.sessionmaker() as session:
        rows = await session.execute(select(table.c.schema, table.c.body).order_by(table.c.id))
        return [(r.schema, r.body) for r in rows if r.body["payload"].get("course_id") == course_id]


async def status(deps: Any, course_id: str) -> str:
    async with deps.sessionmaker() as session:
        return str(
            await session.scalar(select(courses.c.status).where(courses.c.course_id == course_id))
        )


async def test_finalise_asks_for_every_lesson_at_once(deps: Any) -> None:
    course_id, mods = await finalised_course(deps)
    sent = await outbox(deps, course_id)
    assert sent.count(WriteLesson.SCHEMA) == len(mods) == 3
    assert sent.count("course.plan_finalized.v1") == 1
    assert await status(deps, course_id) == "generating"


async def test_each_lesson_and_assessment_counts_once_and_the_last_makes_it_ready(
    deps: Any,
) -> None:
    course_id, mods = await finalised_course(deps)
    sm = deps.sessionmaker
    first = written(course_id, mods[0])
    assert await course_process.lesson_written(first, sm) is True
    assert await course_process.lesson_written(first, sm) is False  # redelivered
    # the same lesson announced again under another message id: still counted once
    assert await course_process.lesson_written(written(course_id, mods[0]), sm) is False
    # an assessment may land before its lesson is counted (independent queues)
    assert await course_process.assessment_ready(assessed(course_id, mods[1]), sm) is True
    assert await course_process.assessment_ready(assessed(course_id, mods[1]), sm) is False
    for module in mods[1:]:
        assert await course_process.lesson_written(written(course_id, module), sm) is True
    assert await status(deps, course_id) == "generating"  # lessons alone are not enough
    assert "course.ready.v1" not in await outbox(deps, course_id)
    for module in (mods[0], mods[2]):
        assert await course_process.assessment_ready(assessed(course_id, module), sm) is True
    sent = await outbox_bodies(deps, course_id)
    progress = [b["payload"] for s, b in sent if s == "course.progress.v1"]
    assert [p["done"] for p in progress] == list(range(1, 2 * len(mods) + 1))
    assert {p["total"] for p in progress} == {2 * len(mods)}
    assert [p["step"] for p in progress].count("assessment") == len(mods)
    assert progress[-1]["lessons_done"] == progress[-1]["assessments_done"] == len(mods)
    [ready] = [b["payload"] for s, b in sent if s == "course.ready.v1"]
    assert [m["quiz_id"] for m in ready["modules"]] == [f"quiz-{m.position}" for m in mods]
    assert await status(deps, course_id) == "ready"


async def test_an_assessment_that_fails_fails_the_course(deps: Any) -> None:
    course_id, mods = await finalised_course(deps)
    lesson = written(course_id, mods[0])
    failed = JobFailed(
        **envelope(),
        payload=JobFailedPayload(
            reason="quiz invalid after repair",
            retryable=False,
            failed_schema=LessonWritten.SCHEMA,
            failed_message_id=lesson.message_id,
            course_id=course_id,
        ),
    )
    assert await course_process.step_failed(failed, deps.sessionmaker) is True
    assert await course_process.step_failed(failed, deps.sessionmaker) is False
    assert await status(deps, course_id) == "failed"


async def test_a_lesson_that_cannot_be_written_fails_the_course(deps: Any) -> None:
    course_id, mods = await finalised_course(deps)
    failed = JobFailed(
        **envelope(),
        payload=JobFailedPayload(
            reason="provider down",
            retryable=True,
            failed_schema=WriteLesson.SCHEMA,
            failed_message_id=mods[1].command_id,
            course_id=course_id,
        ),
    )
    assert await course_process.step_failed(failed, deps.sessionmaker) is True
    assert await course_process.step_failed(failed, deps.sessionmaker) is False
    for module in (mods[0], mods[2]):
        await course_process.lesson_written(written(course_id, module), deps.sessionmaker)
    assert await status(deps, course_id) == "failed"
    assert "course.ready.v1" not in await outbox(deps, course_id)
