"""The course process against the real PostgreSQL: counting, duplicates, failures."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.planner import course_process, finalise, service
from services.planner.store import courses, metadata, modules
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


async def outbox(deps: Any, course_id: str) -> list[str]:
    table = outbox_table(metadata)
    async with deps.sessionmaker() as session:
        rows = await session.execute(select(table.c.schema, table.c.body))
        return [r.schema for r in rows if r.body["payload"].get("course_id") == course_id]


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


async def test_each_lesson_counts_once_and_the_last_makes_the_course_ready(deps: Any) -> None:
    course_id, mods = await finalised_course(deps)
    sm = deps.sessionmaker
    first = written(course_id, mods[0])
    assert await course_process.lesson_written(first, sm) is True
    assert await course_process.lesson_written(first, sm) is False  # redelivered
    # the same lesson announced again under another message id: still counted once
    assert await course_process.lesson_written(written(course_id, mods[0]), sm) is False
    for module in mods[1:]:
        assert await course_process.lesson_written(written(course_id, module), sm) is True
    sent = await outbox(deps, course_id)
    assert sent.count("course.progress.v1") == len(mods)
    assert sent.count("course.ready.v1") == 1
    assert await status(deps, course_id) == "ready"


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
    assert await course_process.lesson_failed(failed, deps.sessionmaker) is True
    assert await course_process.lesson_failed(failed, deps.sessionmaker) is False
    for module in (mods[0], mods[2]):
        await course_process.lesson_written(written(course_id, module), deps.sessionmaker)
    assert await status(deps, course_id) == "failed"
    assert "course.ready.v1" not in await outbox(deps, course_id)
