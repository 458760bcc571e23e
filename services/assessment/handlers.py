"""Thin handlers: validate the contract, call the service, let the outbox publish."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.assessment import grading, queries, recommend, service
from services.assessment.sandbox import Limits, Sandbox
from shared.contracts.assessment import AssessmentReady, ExerciseReady, GenerateExercise
from shared.contracts.content import LessonRevised, LessonWritten
from shared.messaging import for_schema
from shared.rpc import parse_query
from shared.runtime import Runtime
from shared.telemetry import job_context
from shared.topology import event_queue, events_exchange


class SandboxSettings(BaseSettings):
    """Limits of the code sandbox (``LECTERN_SANDBOX_*``)."""

    model_config = SettingsConfigDict(env_prefix="LECTERN_SANDBOX_", extra="ignore")

    cpu_seconds: int = Field(2, ge=1, le=60)
    memory_mb: int = Field(256, ge=32, le=4096)
    wall_seconds: float = Field(5.0, gt=0, le=120)
    concurrency: int | None = Field(None, ge=1, description="processes at once; default cores")


def make_sandbox() -> Sandbox:
    """The service's sandbox, with limits from the environment."""
    cfg = SandboxSettings()
    limits = Limits(
        cpu_seconds=cfg.cpu_seconds, memory_mb=cfg.memory_mb, wall_seconds=cfg.wall_seconds
    )
    return Sandbox(limits, concurrency=cfg.concurrency)


def register(runtime: Runtime) -> None:
    """Attach the assessment service's subscribers, queries and publishers to ``runtime``."""
    runtime.event_publisher(AssessmentReady)
    runtime.event_publisher(ExerciseReady)
    generation = runtime.generation_deps()  # marks the LLM for warm-up at startup
    sandbox = make_sandbox()
    runtime.on_startup(sandbox.start)  # the fork server, before the first exercise
    runtime.on_shutdown(sandbox.aclose)
    deps = service.AssessmentDeps(
        sessionmaker=runtime.sessionmaker,
        llm=generation.llm,
        sandbox=sandbox,
        wake_relay=runtime.relay.wake,
        prompts=generation.prompts,
    )
    sessionmaker = runtime.sessionmaker

    written = runtime.durable_subscriber(
        event_queue("assessment.on-lesson-written", LessonWritten.routing_key()), events_exchange
    )

    @written(filter=for_schema(LessonWritten))
    async def lesson_written(event: LessonWritten) -> None:
        """Write the lesson's quiz and verified exercise; emit assessment.ready."""
        with job_context(event.job_id, event):
            await service.assess_lesson(event, deps)

    revised = runtime.durable_subscriber(
        event_queue("assessment.on-lesson-revised", LessonRevised.routing_key()), events_exchange
    )

    @revised(filter=for_schema(LessonRevised))
    async def lesson_revised(event: LessonRevised) -> None:
        """A revised lesson is a new version: write its own quiz and exercise."""
        with job_context(event.job_id, event):
            await service.assess_lesson(event, deps)

    commands = runtime.commands()

    @commands(filter=for_schema(GenerateExercise))
    async def generate_exercise(cmd: GenerateExercise) -> None:
        """Write and verify an easier or harder exercise; emit exercise.ready."""
        with job_context(cmd.job_id, cmd):
            await service.generate_exercise(cmd, deps)

    @runtime.rpc.query("get_quiz")
    async def get_quiz(body: dict[str, Any]) -> Any:
        """A quiz without its answer key, with the caller's attempts."""
        return await queries.get_quiz(sessionmaker, parse_query(queries.QuizQuery, body))

    @runtime.rpc.query("get_exercise")
    async def get_exercise(body: dict[str, Any]) -> Any:
        """An exercise without its solution or hidden tests, with the caller's submissions."""
        return await queries.get_exercise(sessionmaker, parse_query(queries.ExerciseQuery, body))

    @runtime.rpc.query("get_lesson_assessment")
    async def get_lesson_assessment(body: dict[str, Any]) -> Any:
        """A lesson's quiz and exercises."""
        query = parse_query(queries.LessonQuery, body)
        return await queries.get_lesson_assessment(sessionmaker, query)

    @runtime.rpc.query("export_quizzes")
    async def export_quizzes(body: dict[str, Any]) -> Any:
        """The course's quizzes with their answer keys, for its owner's LMS exports."""
        query = parse_query(queries.CourseQuery, body)
        return await queries.export_quizzes(sessionmaker, query)

    @runtime.rpc.query("grade_attempt")
    async def grade_attempt(body: dict[str, Any]) -> Any:
        """Grade and store a quiz attempt."""
        query = parse_query(grading.AttemptQuery, body)
        return await grading.grade_attempt(sessionmaker, deps, query)

    @runtime.rpc.query("grade_submission")
    async def grade_submission(body: dict[str, Any]) -> Any:
        """Run an exercise's tests on submitted code in the sandbox; store the result."""
        query = parse_query(grading.SubmissionQuery, body)
        return await grading.grade_submission(sessionmaker, deps.sandbox, query)

    @runtime.rpc.query("recommendation")
    async def recommendation(body: dict[str, Any]) -> Any:
        """The caller's next step in a course, and why."""
        return await recommend.recommend(sessionmaker, parse_query(queries.CourseQuery, body))
