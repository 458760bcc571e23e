"""Reading lessons: the lookups the commands need and the RPC queries' answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.store import lessons


class GetLessonQuery(BaseModel):
    """Body of ``content.rpc.get_lesson``."""

    user_id: str = Field(min_length=1, description="Who asks; only the owner gets the lesson.")
    course_id: str = Field(min_length=1, description="Course of the lesson.")
    order: int = Field(ge=1, description="Module position of the lesson, from 1.")
    version: int | None = Field(None, ge=1, description="A given version; default the latest.")


class ListLessonsQuery(BaseModel):
    """Body of ``content.rpc.list_lessons``."""

    user_id: str = Field(min_length=1, description="Who asks; only their lessons are listed.")
    course_id: str = Field(min_length=1, description="The course.")


class LessonRefQuery(BaseModel):
    """Body of ``content.rpc.lesson_ref``."""

    user_id: str = Field(min_length=1, description="Who asks; only the owner gets an answer.")
    lesson_id: str = Field(min_length=1, description="The lesson (any version).")


async def lesson_ref(session: AsyncSession, query: LessonRefQuery) -> dict[str, Any] | None:
    """Where a lesson is: course, position, latest version and the step that wrote it."""
    row = await latest_by_id(session, query.lesson_id)
    if row is None or row.user_id != query.user_id:
        return None
    step = f"lesson:{row.position}" if row.version == 1 else f"revise:{row.position}"
    return {
        "lesson_id": row.lesson_id,
        "course_id": row.course_id,
        "order": row.position,
        "version": row.version,
        "step": step,
    }


async def latest_lesson(session: AsyncSession, course_id: str, order: int) -> Row[Any] | None:
    """The latest version of the lesson at position ``order`` of a course."""
    result = await session.execute(
        select(lessons)
        .where(lessons.c.course_id == course_id, lessons.c.position == order)
        .order_by(lessons.c.version.desc())
        .limit(1)
    )
    return result.first()


async def latest_by_id(session: AsyncSession, lesson_id: str) -> Row[Any] | None:
    """The latest version of the lesson ``lesson_id``."""
    result = await session.execute(
        select(lessons)
        .where(lessons.c.lesson_id == lesson_id)
        .order_by(lessons.c.version.desc())
        .limit(1)
    )
    return result.first()


def lesson_json(row: Row[Any]) -> dict[str, Any]:
    """One stored version as the queries answer it (dates as ISO strings)."""
    return {
        "lesson_id": row.lesson_id,
        "course_id": row.course_id,
        "module_id": row.module_id,
        "order": row.position,
        "version": row.version,
        "title": row.title,
        "markdown": row.markdown,
        "tenant_id": row.tenant_id,
        "user_id": row.user_id,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "latency_ms": row.latency_ms,
        "feedback": row.feedback,
        "citations": row.citations or [],
        "created_at": row.created_at.isoformat(),
    }


async def get_lesson(session: AsyncSession, query: GetLessonQuery) -> dict[str, Any] | None:
    """The asked version (default latest) with the list of all versions; None if not theirs."""
    result = await session.execute(
        select(lessons)
        .where(
            lessons.c.course_id == query.course_id,
            lessons.c.position == query.order,
            lessons.c.user_id == query.user_id,
        )
        .order_by(lessons.c.version)
    )
    rows = result.all()
    chosen = [r for r in rows if query.version is None or r.version == query.version]
    if not chosen:
        return None
    return {
        **lesson_json(chosen[-1]),
        "versions": [
            {"version": r.version, "created_at": r.created_at.isoformat(), "feedback": r.feedback}
            for r in rows
        ],
    }


async def list_lessons(session: AsyncSession, query: ListLessonsQuery) -> list[dict[str, Any]]:
    """The latest version of each of the caller's lessons in a course, in course order."""
    result = await session.execute(
        select(lessons)
        .where(lessons.c.course_id == query.course_id, lessons.c.user_id == query.user_id)
        .distinct(lessons.c.position)
        .order_by(lessons.c.position, lessons.c.version.desc())
    )
    return [lesson_json(row) for row in result.all()]
