"""Thin handlers: validate the contract, call the service, let the outbox publish."""

from __future__ import annotations

from typing import Any

from services.planner import course_process, finalise, grounding, queries, service
from shared import rpc
from shared.broker import current_delivery
from shared.contracts.assessment import AssessmentReady
from shared.contracts.content import LessonWritten, WriteLesson
from shared.contracts.course import CourseProgress, CourseReady, PlanFinalized
from shared.contracts.jobs import JobFailed
from shared.contracts.planner import FinalizeCourse, PlanCourse, PlanProposed, RefinePlan
from shared.contracts.sources import SourceDeleted, SourceIngested
from shared.messaging import for_schema
from shared.runtime import Runtime
from shared.streaming import delivery_ordinal
from shared.telemetry import job_context
from shared.topology import event_queue, events_exchange


def _deps(runtime: Runtime) -> grounding.PlannerDeps:
    """Generation dependencies, plus passages of a course's sources from content."""

    async def search_sources(body: dict[str, Any]) -> Any:
        return await rpc.request(runtime.broker, "content", "search_sources", body, timeout=15)

    return grounding.PlannerDeps(**vars(runtime.generation_deps()), search_sources=search_sources)


def register(runtime: Runtime) -> None:
    """Attach the planner's subscribers, publishers and queries to ``runtime``."""
    for event in (PlanProposed, PlanFinalized, CourseProgress, CourseReady):
        runtime.event_publisher(event)
    runtime.command_publisher(FinalizeCourse)  # autopilot finalises through the queue
    runtime.command_publisher(WriteLesson)
    runtime.sends_commands_to("content")
    deps = _deps(runtime)
    commands = runtime.commands()

    @commands(filter=for_schema(PlanCourse))
    async def plan_course(cmd: PlanCourse) -> None:
        """Plan a course: stream the welcome plan, store it, emit course.plan_proposed."""
        with job_context(cmd.job_id, cmd):
            await service.plan_course(
                cmd, deps, delivery=delivery_ordinal(current_delivery(runtime.broker))
            )

    @commands(filter=for_schema(RefinePlan))
    async def refine_plan(cmd: RefinePlan) -> None:
        """Refine the plan in the chat: stream the new plan, emit course.plan_proposed."""
        with job_context(cmd.job_id, cmd):
            await service.refine_plan(
                cmd, deps, delivery=delivery_ordinal(current_delivery(runtime.broker))
            )

    @commands(filter=for_schema(FinalizeCourse))
    async def finalize_course(cmd: FinalizeCourse) -> None:
        """Finalise: modules, course.plan_finalized, then content.write_lesson for each."""
        with job_context(cmd.job_id, cmd):
            await finalise.finalize_course(
                cmd,
                deps,
                delivery=delivery_ordinal(current_delivery(runtime.broker)),
                max_modules=runtime.settings.max_modules,
            )

    written = runtime.durable_subscriber(
        event_queue("planner.on-lesson-written", LessonWritten.routing_key()), events_exchange
    )

    @written(filter=for_schema(LessonWritten))
    async def lesson_written(event: LessonWritten) -> None:
        """Count the lesson; emit course.progress and, with the last one, course.ready."""
        with job_context(event.job_id, event):
            if await course_process.lesson_written(event, runtime.sessionmaker):
                runtime.relay.wake()

    assessed = runtime.durable_subscriber(
        event_queue("planner.on-assessment-ready", AssessmentReady.routing_key()), events_exchange
    )

    @assessed(filter=for_schema(AssessmentReady))
    async def assessment_ready(event: AssessmentReady) -> None:
        """Count the assessment; emit course.progress and, with the last one, course.ready."""
        with job_context(event.job_id, event):
            if await course_process.assessment_ready(event, runtime.sessionmaker):
                runtime.relay.wake()

    failed = runtime.durable_subscriber(
        event_queue("planner.on-job-failed", JobFailed.routing_key()), events_exchange
    )

    @failed(filter=for_schema(JobFailed))
    async def job_failed(event: JobFailed) -> None:
        """A lesson that could not be written or assessed marks its course failed."""
        with job_context(event.job_id, event):
            await course_process.step_failed(event, runtime.sessionmaker)

    ingested = runtime.durable_subscriber(
        event_queue("planner.on-source-ingested", SourceIngested.routing_key()), events_exchange
    )

    @ingested(filter=for_schema(SourceIngested))
    async def source_ingested(event: SourceIngested) -> None:
        """Remember the course's source: its plans are written from it."""
        with job_context(event.job_id, event):
            await grounding.source_ingested(event, runtime.sessionmaker)

    deleted = runtime.durable_subscriber(
        event_queue("planner.on-source-deleted", SourceDeleted.routing_key()), events_exchange
    )

    @deleted(filter=for_schema(SourceDeleted))
    async def source_deleted(event: SourceDeleted) -> None:
        """Forget a deleted source."""
        with job_context(event.job_id, event):
            await grounding.source_deleted(event, runtime.sessionmaker)

    @runtime.rpc.query("list_courses")
    async def list_courses(body: dict[str, Any]) -> Any:
        return await queries.list_courses(runtime.sessionmaker, body)

    @runtime.rpc.query("get_course")
    async def get_course(body: dict[str, Any]) -> Any:
        return await queries.get_course(runtime.sessionmaker, body)
