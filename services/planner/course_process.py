"""The course process: count lessons as they land, announce progress and readiness.

State lives in PostgreSQL (``modules.lesson_status``), so a restarted planner picks
up where it was. Each event is recorded as handled in the same transaction as its
effect, and a module counts once however many times its lesson is announced. The
course row is locked while counting, so two lessons landing at once on two
replicas cannot both miss (or both announce) readiness.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update

from services.planner.store import courses, metadata, modules
from shared.contracts.base import Message
from shared.contracts.content import LessonWritten, WriteLesson
from shared.contracts.course import (
    CourseLessonRef,
    CourseProgress,
    CourseProgressPayload,
    CourseReady,
    CourseReadyPayload,
)
from shared.contracts.jobs import JobFailed
from shared.db import claim_message
from shared.ids import derived_id
from shared.outbox import enqueue

log = logging.getLogger("lectern.planner.course")


async def lesson_written(event: LessonWritten, sessionmaker: Any) -> bool:
    """Mark the module's lesson written; emit course.progress, and course.ready at the end.

    Returns False for a duplicate (already handled event, or a lesson already counted).
    """
    p = event.payload
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, "planner.lesson_written", event.message_id):
            return False
        course = (
            await session.execute(
                select(courses).where(courses.c.course_id == p.course_id).with_for_update()
            )
        ).first()
        if course is None:
            log.warning("lesson %s is for unknown course %s; ignored", p.lesson_id, p.course_id)
            return False
        counted = await session.execute(
            update(modules)
            .where(
                modules.c.module_id == p.module_id,
                modules.c.course_id == p.course_id,
                modules.c.lesson_status != "written",
            )
            .values(lesson_status="written", lesson_id=p.lesson_id, updated_at=func.now())
            .returning(modules.c.module_id)
        )
        if counted.first() is None:
            return False  # this module's lesson was already counted
        done, total = await _counts(session, p.course_id)
        await enqueue(
            session,
            metadata,
            event.follow(
                CourseProgress,
                CourseProgressPayload(
                    course_id=p.course_id,
                    done=done,
                    total=total,
                    module_id=p.module_id,
                    lesson_id=p.lesson_id,
                ),
                message_id=derived_id(event.message_id, "progress"),
            ),
        )
        if done == total and course.status == "generating":
            await _mark_ready(session, event, course)
    return True


async def lesson_failed(event: JobFailed, sessionmaker: Any) -> bool:
    """A lesson could not be written: mark its module failed (the course cannot be ready)."""
    p = event.payload
    if p.failed_schema != WriteLesson.SCHEMA or not p.failed_message_id:
        return False
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, "planner.lesson_failed", event.message_id):
            return False
        failed = (
            await session.execute(
                update(modules)
                .where(
                    modules.c.command_id == p.failed_message_id,
                    modules.c.lesson_status == "pending",
                )
                .values(lesson_status="failed", updated_at=func.now())
                .returning(modules.c.course_id)
            )
        ).first()
        if failed is None:
            return False
        await session.execute(
            update(courses)
            .where(courses.c.course_id == failed.course_id, courses.c.status == "generating")
            .values(status="failed", updated_at=func.now())
        )
    return True


async def _counts(session: Any, course_id: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(
                func.count().filter(modules.c.lesson_status == "written"),
                func.count(),
            ).where(modules.c.course_id == course_id)
        )
    ).one()
    return int(row[0]), int(row[1])


async def _mark_ready(session: Any, origin: Message, course: Any) -> None:
    await session.execute(
        update(courses)
        .where(courses.c.course_id == course.course_id)
        .values(status="ready", updated_at=func.now())
    )
    rows = await session.execute(
        select(modules.c.module_id, modules.c.position, modules.c.title, modules.c.lesson_id)
        .where(modules.c.course_id == course.course_id)
        .order_by(modules.c.position)
    )
    await enqueue(
        session,
        metadata,
        origin.follow(
            CourseReady,
            CourseReadyPayload(
                course_id=course.course_id,
                title=course.title or course.profile.get("topic", ""),
                modules=[
                    CourseLessonRef(
                        module_id=r.module_id,
                        order=r.position,
                        title=r.title,
                        lesson_id=r.lesson_id,
                    )
                    for r in rows
                ],
            ),
            message_id=derived_id(course.course_id, "ready"),
        ),
    )
