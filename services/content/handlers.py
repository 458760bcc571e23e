"""Thin handlers: validate the contract, call the service, let the outbox publish."""

from __future__ import annotations

from typing import Any

from services.content import queries, service, source_handlers
from shared.broker import current_delivery
from shared.contracts.content import LessonRevised, LessonWritten, ReviseLesson, WriteLesson
from shared.messaging import for_schema
from shared.rpc import not_found, parse_query
from shared.runtime import Runtime
from shared.streaming import delivery_ordinal
from shared.telemetry import job_context


def register(runtime: Runtime) -> None:
    """Attach the content service's subscribers, queries and publishers to ``runtime``."""
    runtime.event_publisher(LessonWritten)
    runtime.event_publisher(LessonRevised)
    commands = runtime.commands()
    retriever = source_handlers.register(runtime, commands)
    # lessons of a course with sources are written from (and cite) their passages
    deps = service.ContentDeps(**vars(runtime.generation_deps()), retriever=retriever)

    @commands(filter=for_schema(WriteLesson))
    async def write_lesson(cmd: WriteLesson) -> None:
        """Write a module's lesson: stream it, store it, emit lesson.written."""
        with job_context(cmd.job_id, cmd):
            await service.write_lesson(
                cmd, deps, delivery=delivery_ordinal(current_delivery(runtime.broker))
            )

    @commands(filter=for_schema(ReviseLesson))
    async def revise_lesson(cmd: ReviseLesson) -> None:
        """Revise a lesson from feedback: stream it, store the next version, emit lesson.revised."""
        with job_context(cmd.job_id, cmd):
            await service.revise_lesson(
                cmd, deps, delivery=delivery_ordinal(current_delivery(runtime.broker))
            )

    @runtime.rpc.query("get_lesson")
    async def get_lesson(body: dict[str, Any]) -> dict[str, Any]:
        """One version of a lesson (default the latest) and the list of its versions."""
        query = parse_query(queries.GetLessonQuery, body)
        async with runtime.sessionmaker() as session:
            lesson = await queries.get_lesson(session, query)
        if lesson is None:
            version = f" version {query.version}" if query.version is not None else ""
            raise not_found(f"lesson {query.order}{version} of course {query.course_id}")
        return lesson

    @runtime.rpc.query("lesson_ref")
    async def lesson_ref(body: dict[str, Any]) -> dict[str, Any]:
        """Where a lesson is (course, position, latest version, the step that wrote it)."""
        query = parse_query(queries.LessonRefQuery, body)
        async with runtime.sessionmaker() as session:
            found = await queries.lesson_ref(session, query)
        if found is None:
            raise not_found(f"lesson {query.lesson_id}")
        return found

    @runtime.rpc.query("list_lessons")
    async def list_lessons(body: dict[str, Any]) -> dict[str, Any]:
        """The latest version of each of the caller's lessons in a course, in order."""
        query = parse_query(queries.ListLessonsQuery, body)
        async with runtime.sessionmaker() as session:
            found = await queries.list_lessons(session, query)
        return {"course_id": query.course_id, "lessons": found}
