"""Plans of a course with sources are built from retrieved passages and cite them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.planner import finalise, grounding, service
from services.planner.store import chat_messages
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    PlanCourse,
    PlanCoursePayload,
    RefinePlan,
    RefinePlanPayload,
)
from shared.contracts.sources import (
    SourceDeleted,
    SourceDeletedPayload,
    SourceIngested,
    SourceIngestedPayload,
)
from tests.planner.conftest import envelope

pytestmark = pytest.mark.integration

PASSAGES = [
    {
        "chunk_id": "c1",
        "source_id": "s1",
        "filename": "guide.pdf",
        "page": 2,
        "section": "Guide > The event loop",
        "text": "The event loop runs one task at a time. It switches at every await.",
    },
    {
        "chunk_id": "c2",
        "source_id": "s1",
        "filename": "guide.pdf",
        "page": 5,
        "section": "Guide > Cancellation",
        "text": "A cancelled task gets CancelledError at its next await.",
    },
]


class Sources:
    """content.rpc.search_sources, recorded."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append(body)
        return {"passages": PASSAGES, "backend": "numpy"}


def grounded(deps: Any, search: Sources) -> grounding.PlannerDeps:
    return grounding.PlannerDeps(**{**vars(deps), "search_sources": search})


async def have_source(deps: Any, course_id: str, source_id: str = "s1") -> None:
    event = SourceIngested(
        **envelope(),
        payload=SourceIngestedPayload(
            course_id=course_id,
            source_id=source_id,
            filename="guide.pdf",
            kind="pdf",
            revision=1,
            chunks=2,
            pages=5,
            size_bytes=10,
            content_sha256="0" * 64,
            embedding_model="local/all-MiniLM-L6-v2",
        ),
    )
    assert await grounding.source_ingested(event, deps.sessionmaker)
    assert not await grounding.source_ingested(event, deps.sessionmaker)  # once


def plan(course_id: str, **kw: Any) -> PlanCourse:
    return PlanCourse(
        **envelope(),
        payload=PlanCoursePayload(
            course_id=course_id, topic="Python asyncio", duration_hours=6, **kw
        ),
    )


async def latest_plan(deps: Any, course_id: str) -> str:
    from sqlalchemy import select

    async with deps.sessionmaker() as session:
        rows = await session.execute(
            select(chat_messages.c.content)
            .where(chat_messages.c.course_id == course_id, chat_messages.c.role == "assistant")
            .order_by(chat_messages.c.seq.desc())
        )
        return str(rows.scalars().first())


async def test_the_welcome_plan_is_built_from_the_courses_passages(deps: Any) -> None:
    course_id = f"c-{uuid.uuid4()}"
    await have_source(deps, course_id)
    search = Sources()
    ours = grounded(deps, search)

    assert await service.plan_course(plan(course_id, expectations="write a scraper"), ours)

    [asked] = search.asked
    assert asked == {
        "tenant_id": "t",
        "user_id": "u",
        "course_id": course_id,
        "q": "Python asyncio. write a scraper",
        "k": grounding.PASSAGES_PER_PLAN,
    }
    [call] = deps.llm.calls
    assert call["task"] == "grounded_welcome_plan"
    assert "=== SOURCES ===\n[S1]\nsource: guide.pdf, p. 2 — Guide > The event loop" in str(
        call["messages"][-1]["content"]
    )
    text = await latest_plan(deps, course_id)
    assert "1. **The event loop** — The event loop runs one task at a time. [S1]" in text
    assert "2. **Cancellation** — " in text and "[S2]" in text
    assert text.endswith(
        "## Sources\n\n- [S1] guide.pdf, p. 2 — Guide > The event loop\n"
        "- [S2] guide.pdf, p. 5 — Guide > Cancellation\n"
    )

    # finalised, the modules carry no plan markers into their lessons
    finalize = FinalizeCourse(**envelope(), payload=FinalizeCoursePayload(course_id=course_id))
    assert await finalise.finalize_course(finalize, ours)
    from sqlalchemy import select

    from services.planner.store import modules

    async with deps.sessionmaker() as session:
        rows = (
            await session.execute(
                select(modules).where(modules.c.course_id == course_id).order_by(modules.c.position)
            )
        ).all()
    assert rows and all("[S" not in r.description and "[S" not in r.title for r in rows)
    assert rows[0].title == "The event loop"


async def test_without_sources_nothing_is_asked_and_the_plan_is_plain(deps: Any) -> None:
    course_id = f"c-{uuid.uuid4()}"
    await have_source(deps, f"c-{uuid.uuid4()}", source_id=f"s-{uuid.uuid4()}")  # another
    search = Sources()
    assert await service.plan_course(plan(course_id), grounded(deps, search))
    assert search.asked == []
    assert deps.llm.calls[0]["task"] == "welcome_plan"
    assert "## Sources" not in await latest_plan(deps, course_id)


async def test_sources_added_after_the_welcome_plan_shape_the_refined_one(deps: Any) -> None:
    course_id = f"c-{uuid.uuid4()}"
    search = Sources()
    ours = grounded(deps, search)
    await service.plan_course(plan(course_id), ours)
    assert "[S1]" not in await latest_plan(deps, course_id)

    await have_source(deps, course_id, source_id=f"s-{uuid.uuid4()}")
    refine = RefinePlan(
        **envelope(), payload=RefinePlanPayload(course_id=course_id, text="Use my notes")
    )
    assert await service.refine_plan(refine, ours)
    assert search.asked[-1]["q"] == "Python asyncio. Use my notes"
    assert deps.llm.calls[-1]["task"] == "grounded_refine_plan"
    text = await latest_plan(deps, course_id)
    assert "**The event loop**" in text and "[S1]" in text and "## Changes" in text
    assert '"Use my notes"' in text  # the request, not the passages, is what changed
    assert "## Sources\n\n- [S1] guide.pdf, p. 2" in text


async def test_a_deleted_source_no_longer_grounds_the_plan(deps: Any) -> None:
    course_id = f"c-{uuid.uuid4()}"
    await have_source(deps, course_id, source_id="s-gone-" + course_id)
    deleted = SourceDeleted(
        **envelope(),
        payload=SourceDeletedPayload(
            course_id=course_id, source_id="s-gone-" + course_id, filename="guide.pdf"
        ),
    )
    assert await grounding.source_deleted(deleted, deps.sessionmaker)
    search = Sources()
    await service.plan_course(plan(course_id), grounded(deps, search))
    assert search.asked == []


def test_unknown_markers_are_dropped_from_a_plan() -> None:
    text = "1. **A** — x [S1] [S9]\n"
    assert grounding.cite(text, PASSAGES) == (
        "1. **A** — x [S1]\n\n## Sources\n\n- [S1] guide.pdf, p. 2 — Guide > The event loop\n"
    )
    assert grounding.cite("plain [S3]\n", PASSAGES) == "plain\n"
    assert grounding.cite("plain [S3]\n", []) == "plain [S3]\n"
