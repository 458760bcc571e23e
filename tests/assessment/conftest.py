"""Assessment fixtures: the real PostgreSQL, the real sandbox, the offline model recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import uvloop
from sqlalchemy import select

from services.assessment.sandbox import Limits, Sandbox
from services.assessment.service import AssessmentDeps
from services.assessment.store import metadata
from shared.contracts.content import LessonWritten, LessonWrittenPayload
from shared.contracts.planner import LearnerProfile
from shared.db import make_engine, make_sessionmaker
from shared.llm.client import LLMResult
from shared.llm.offline import LessonBrief, write_lesson
from shared.llm.prompts import DefaultPrompts
from shared.outbox import outbox_table
from shared.settings import get_settings
from tests.support.llm import Recording


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The sandbox's tests run on both event loops: the services run on uvloop (uvicorn's
    choice), whose own subprocess support the sandbox deliberately does not use."""
    if item.nodeid.split("::")[0].endswith("test_sandbox.py"):
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


PROFILE = LearnerProfile(topic="Python for data analysis", level="beginner", language="en")


@pytest.fixture
async def deps(infra: dict[str, str]) -> AsyncIterator[AssessmentDeps]:
    """Dependencies on the migrated test database, with a real (fast-limit) sandbox."""
    engine = make_engine(get_settings("assessment"))
    sandbox = Sandbox(Limits(cpu_seconds=1, wall_seconds=3), concurrency=2)
    yield AssessmentDeps(
        sessionmaker=make_sessionmaker(engine),
        llm=Recording("assessment"),
        sandbox=sandbox,
        wake_relay=lambda: None,
        prompts=DefaultPrompts(),
    )
    await sandbox.aclose()
    await engine.dispose()


def lesson_markdown(title: str, *, technical: bool = True) -> str:
    """A lesson as the offline model writes it (with Python code when ``technical``)."""
    topic = "Python for data analysis" if technical else "Watercolour painting"
    return write_lesson(
        LessonBrief(
            title=title,
            description="",
            topic=topic,
            objectives=["Explain the idea", "Use it in a small example"],
            level="beginner",
        )
    )


def lesson_event(
    course_id: str,
    order: int = 1,
    *,
    user_id: str = "u-1",
    technical: bool = True,
    message_id: str | None = None,
) -> LessonWritten:
    """A lesson.written event for lesson ``order`` of ``course_id``."""
    title = f"Lists and loops {order}" if technical else f"Mixing colours {order}"
    extra = {"message_id": message_id} if message_id else {}
    return LessonWritten(
        job_id=f"job-{course_id}",
        correlation_id=f"job-{course_id}",
        tenant_id="t-1",
        user_id=user_id,
        payload=LessonWrittenPayload(
            course_id=course_id,
            module_id=f"{course_id}:m{order}",
            lesson_id=f"{course_id}:l{order}",
            order=order,
            title=title,
            version=1,
            markdown=lesson_markdown(title, technical=technical),
            model="offline/lectern",
            input_tokens=10,
            output_tokens=100,
            profile=PROFILE if technical else None,
        ),
        **extra,
    )


def new_course() -> str:
    return f"c-{uuid.uuid4()}"


async def outbox(deps: AssessmentDeps, course_id: str) -> list[dict[str, Any]]:
    """Bodies of the outbox messages about ``course_id``, in order."""
    table = outbox_table(metadata)
    async with deps.sessionmaker() as session:
        rows = await session.execute(
            select(table.c.body)
            .where(table.c.body["payload"]["course_id"].astext == course_id)
            .order_by(table.c.id)
        )
        return [r.body for r in rows]


def fake_result(text: str = "{}") -> LLMResult:
    return LLMResult(
        text=text,
        model="fake/model",
        input_tokens=50,
        output_tokens=70,
        cost_usd=None,
        latency_ms=5.0,
        ttft_ms=1.0,
        attempts=1,
        fallback_used=False,
    )
