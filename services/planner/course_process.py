"""The course process: count lessons and assessments as they land; announce progress
and readiness.

A course is ready when every module's lesson is written and assessed. State lives in
PostgreSQL (``modules.lesson_status``, ``modules.assessment_status``), so a restarted
planner picks up where it was, and the two may land in either order. Each event is
recorded as handled in the same transaction as its effect, and a module's lesson (or
assessment) counts once however many times it is announced. The course row is locked
while counting, so two steps landing at once on two replicas cannot both miss (or
both announce) readiness.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update

from services.planner.store import courses, metadata, modules
from shared.contracts.assessment import AssessmentReady
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
from shared.metrics import COURSE_DURATION
from shared.outbox import enqueue

log = logging.getLogger("lectern.planner.course")


async def lesson_written(event: LessonWritten, sessionmaker: Any) -> bool:
    """Mark the module's lesson written; emit course.progress, and course.ready at the end.

    Returns False for a duplicate (already handled event, or a lesson already counted).
    """
    p = event.payload
    return await _count_step(
        event,
        sessionmaker,
        consumer="planner.lesson_written",
        step="lesson",
        course_id=p.course_id,
        module_id=p.module_id,
        lesson_id=p.lesson_id,
        status_column="lesson_status",
        values={"lesson_status": "written", "lesson_id": p.lesson_id},
        done_status="written",
    )


async def assessment_ready(event: AssessmentReady, sessionmaker: Any) -> bool:
    """Mark the module's lesson assessed; emit course.progress, and course.ready at the end.

    Returns False for a duplicate (already handled event, or an assessment already counted).
    """
    p = event.payload
    return await _count_step(
        event,
        sessionmaker,
        consumer="planner.assessment_ready",
        step="assessment",
        course_id=p.course_id,
        module_id=p.module_id,
        lesson_id=p.lesson_id,
        status_column="assessment_status",
        values={
            "assessment_status": "ready",
            "quiz_id": p.quiz_id,
            "exercise_id": p.exercise.exercise_id if p.exercise else None,
        },
        done_status="ready",
    )


async def _count_step(
    event: Message,
    sessionmaker: Any,
    *,
    consumer: str,
    step: str,
    course_id: str,
    module_id: str,
    lesson_id: str,
    status_column: str,
    values: dict[str, Any],
    done_status: str,
) -> bool:
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, consumer, event.message_id):
            return False
        course = (
            await session.execute(
                select(courses).where(courses.c.course_id == course_id).with_for_update()
            )
        ).first()
        if course is None:
            log.warning("%s of lesson %s is for unknown course %s", step, lesson_id, course_id)
            return False
        # the step counted and the course's counts in one statement; the counts are read
        # as they were before the update, which moved this module's step to done
        counted = (
            update(modules)
            .where(
                modules.c.module_id == module_id,
                modules.c.course_id == course_id,
                modules.c[status_column] != done_status,
            )
            .values(**values, updated_at=func.now())
            .returning(modules.c.module_id)
            .cte("counted")
        )
        row = (
            await session.execute(
                select(
                    select(func.count()).select_from(counted).scalar_subquery(),
                    func.count().filter(modules.c.lesson_status == "written"),
                    func.count().filter(modules.c.assessment_status == "ready"),
                    func.count(),
                ).where(modules.c.course_id == course_id)
            )
        ).one()
        if not row[0]:
            return False  # this module's step was already counted
        lessons_done = int(row[1]) + (step == "lesson")
        assessed = int(row[2]) + (step == "assessment")
        modules_total = int(row[3])
        await enqueue(
            session,
            metadata,
            event.follow(
                CourseProgress,
                CourseProgressPayload(
                    course_id=course_id,
                    done=lessons_done + assessed,
                    total=2 * modules_total,
                    module_id=module_id,
                    lesson_id=lesson_id,
                    step=step,
                    lessons_done=lessons_done,
                    assessments_done=assessed,
                ),
                message_id=derived_id(event.message_id, "progress"),
            ),
        )
        complete = lessons_done == assessed == modules_total
        if complete and course.status == "generating":
            await _mark_ready(session, event, course)
    return True


async def step_failed(event: JobFailed, sessionmaker: Any) -> bool:
    """A lesson could not be written or assessed: the course fails (it cannot be ready)."""
    p = event.payload
    if p.failed_schema == LessonWritten.SCHEMA and p.course_id:
        return await _assessment_failed(event, sessionmaker, p.course_id)
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


async def _assessment_failed(event: JobFailed, sessionmaker: Any, course_id: str) -> bool:
    """A lesson.written that could not be handled (its assessment failed) fails the course.

    The job.failed names the course but not the module: every module still waiting
    for its assessment is marked failed with it.
    """
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, "planner.lesson_failed", event.message_id):
            return False
        await session.execute(
            update(modules)
            .where(modules.c.course_id == course_id, modules.c.assessment_status == "pending")
            .values(assessment_status="failed", updated_at=func.now())
        )
        failed = await session.execute(
            update(courses)
            .where(courses.c.course_id == course_id, courses.c.status == "generating")
            .values(status="failed", updated_at=func.now())
            .returning(courses.c.course_id)
        )
        return failed.first() is not None


async def _mark_ready(session: Any, origin: Message, course: Any) -> None:
    await session.execute(
        update(courses)
        .where(courses.c.course_id == course.course_id)
        .values(status="ready", updated_at=func.now())
    )
    took = (
        await session.execute(
            select(func.extract("epoch", func.now() - courses.c.created_at)).where(
                courses.c.course_id == course.course_id
            )
        )
    ).scalar()
    if took is not None:
        COURSE_DURATION.observe(max(0.0, float(took)))
    rows = await session.execute(
        select(
            modules.c.module_id,
            modules.c.position,
            modules.c.title,
            modules.c.lesson_id,
            modules.c.quiz_id,
            modules.c.exercise_id,
        )
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
                        quiz_id=r.quiz_id,
                        exercise_id=r.exercise_id,
                    )
                    for r in rows
                ],
            ),
            message_id=derived_id(course.course_id, "ready"),
        ),
    )
