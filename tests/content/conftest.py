"""Fixtures for the content service: the real PostgreSQL, a fake LLM, collected chunks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.content.service import ContentDeps
from services.content.store import lessons, metadata
from shared.contracts.content import (
    ReviseLesson,
    ReviseLessonPayload,
    WriteLesson,
    WriteLessonPayload,
)
from shared.contracts.course import ModuleSpec
from shared.contracts.jobs import JobChunk
from shared.contracts.planner import LearnerProfile
from shared.db import make_sessionmaker
from shared.llm.client import LLMResult
from shared.llm.prompts import DefaultPrompts
from shared.outbox import outbox_table

OUTLINE = ["Why asyncio", "Coroutines and the event loop", "Tasks and cancellation"]


class FakeLLM:
    """Streams a canned lesson in a few pieces and counts the calls."""

    def __init__(self, text: str = "# Lesson\n\nSome text.\n\n## Knowledge check\n") -> None:
        self.text = text
        self.calls: list[dict[str, Any]] = []

    async def stream(self, **kw: Any) -> LLMResult:
        self.calls.append(kw)
        await kw["on_attempt"](1)
        third = len(self.text) // 3
        for piece in (self.text[:third], self.text[third : 2 * third], self.text[2 * third :]):
            await kw["on_delta"](piece)
        return LLMResult(
            text=self.text,
            model="fake/model",
            input_tokens=120,
            output_tokens=80,
            cost_usd=None,
            latency_ms=12.5,
            ttft_ms=1.0,
            attempts=1,
            fallback_used=False,
        )


@dataclass
class Harness:
    """The service's dependencies plus what the tests inspect."""

    sessionmaker: async_sessionmaker[AsyncSession]
    llm: Any
    chunks: list[JobChunk] = field(default_factory=list)
    wakes: int = 0

    @property
    def deps(self) -> ContentDeps:
        async def publish_chunk(chunk: JobChunk) -> None:
            self.chunks.append(chunk)

        def wake() -> None:
            self.wakes += 1

        return ContentDeps(
            sessionmaker=self.sessionmaker,
            llm=self.llm,
            publish_chunk=publish_chunk,
            wake_relay=wake,
            prompts=DefaultPrompts(),
        )

    async def lessons(self, course_id: str) -> list[Any]:
        async with self.sessionmaker() as session:
            result = await session.execute(
                select(lessons)
                .where(lessons.c.course_id == course_id)
                .order_by(lessons.c.position, lessons.c.version)
            )
            return list(result.all())

    async def outbox(self, course_id: str) -> list[Any]:
        table = outbox_table(metadata)
        async with self.sessionmaker() as session:
            result = await session.execute(
                select(table)
                .where(table.c.body["payload"]["course_id"].astext == course_id)
                .order_by(table.c.id)
            )
            return list(result.all())


@pytest.fixture
async def sessionmaker(infra: dict[str, str]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the migrated test database."""
    engine = create_async_engine(infra["DATABASE_URL"])
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def harness(sessionmaker: async_sessionmaker[AsyncSession]) -> Harness:
    """Dependencies with a fake LLM."""
    return Harness(sessionmaker=sessionmaker, llm=FakeLLM())


def new_course_id() -> str:
    return f"c-{uuid.uuid4()}"


def write_cmd(
    course_id: str,
    order: int = 2,
    *,
    user_id: str | None = "u-1",
    message_id: str | None = None,
) -> WriteLesson:
    """A write_lesson command for module ``order`` of an asyncio course."""
    module = ModuleSpec(
        module_id=f"{course_id}:m{order}",
        order=order,
        title=OUTLINE[order - 1],
        description="How async def, await and the event loop fit together in Python code.",
        learning_objectives=["Explain what await does", "Run two coroutines concurrently"],
        estimated_hours=2,
    )
    payload = WriteLessonPayload(
        course_id=course_id,
        course_title="Python asyncio",
        module=module,
        outline=OUTLINE,
        profile=LearnerProfile(
            topic="Python asyncio",
            level="intermediate",
            expectations="Write a concurrent web scraper",
            style="practice",
        ),
    )
    extra = {"message_id": message_id} if message_id else {}
    return WriteLesson(
        job_id="job-1", correlation_id="corr-1", user_id=user_id, payload=payload, **extra
    )


def revise_cmd(
    course_id: str, order: int = 2, *, user_id: str | None = "u-1", feedback: str = "More examples"
) -> ReviseLesson:
    """A revise_lesson command."""
    return ReviseLesson(
        job_id="job-2",
        correlation_id="corr-2",
        user_id=user_id,
        payload=ReviseLessonPayload(course_id=course_id, order=order, feedback=feedback),
    )
