"""Plans written from the course's own sources: which courses have some, and their passages.

The planner learns a course's sources from ``source.ingested`` / ``source.deleted``
(its own table, so a course without sources never waits on the content service), and
asks ``content.rpc.search_sources`` for passages only when there are some. A plan's
cited passages are listed under "## Sources" at its end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Exists, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.planner.store import course_sources, metadata
from shared.citations import label, resolve
from shared.contracts.base import Message
from shared.contracts.sources import SourceDeleted, SourceIngested
from shared.db import claim_message
from shared.generation import GenerationDeps

PASSAGES_PER_PLAN = 8
SearchSources = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class PlannerDeps(GenerationDeps):
    """What the planner's logic needs; ``search_sources`` asks content for passages
    (None: plans are never grounded)."""

    search_sources: SearchSources | None = None


async def source_ingested(event: SourceIngested, sessionmaker: Any) -> bool:
    """Remember that the course has this source (latest revision wins)."""
    p = event.payload
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, "planner.source_ingested", event.message_id):
            return False
        stmt = insert(course_sources).values(
            source_id=p.source_id,
            course_id=p.course_id,
            tenant_id=event.tenant_id,
            user_id=event.user_id,
            filename=p.filename,
            revision=p.revision,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[course_sources.c.source_id],
                set_={"filename": p.filename, "revision": p.revision, "updated_at": func.now()},
                where=course_sources.c.revision <= p.revision,
            )
        )
    return True


async def source_deleted(event: SourceDeleted, sessionmaker: Any) -> bool:
    """Forget a deleted source."""
    async with sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, "planner.source_deleted", event.message_id):
            return False
        await session.execute(
            delete(course_sources).where(course_sources.c.source_id == event.payload.source_id)
        )
    return True


def sources_exist(course_id: Any, tenant_id: Any, user_id: Any) -> Exists:
    """``EXISTS``: the owner's course has sources (values or bound parameters; a null
    ``user_id`` is a tenant's own course), to select beside other checks."""
    return exists().where(
        course_sources.c.course_id == course_id,
        course_sources.c.tenant_id == tenant_id,
        course_sources.c.user_id.is_not_distinct_from(user_id),
    )


async def has_sources(session: AsyncSession, origin: Message, course_id: str) -> bool:
    """Whether the sender's course has sources (in the caller's session)."""
    found = sources_exist(course_id, origin.tenant_id, origin.user_id)
    return bool(await session.scalar(select(found)))


async def passages(
    deps: Any, origin: Message, course_id: str, query: str, *, has: bool | None = None
) -> list[dict[str, Any]]:
    """Passages of the owner's course sources for ``query``; [] when it has none.

    ``has`` is :func:`has_sources` when the caller already asked (in a session it had
    open anyway: one database round trip less before the LLM call). A course with
    sources whose passages cannot be fetched (content down) raises the RPC error, so
    the command is retried rather than planned without them.
    """
    search = getattr(deps, "search_sources", None)
    if search is None:
        return []
    if has is None:
        async with deps.sessionmaker() as session:
            has = await has_sources(session, origin, course_id)
    if not has:
        return []
    found = await search(
        {
            "tenant_id": origin.tenant_id,
            "user_id": origin.user_id,
            "course_id": course_id,
            "q": query[:2000],
            "k": PASSAGES_PER_PLAN,
        }
    )
    return list(found.get("passages") or [])


def cite(text: str, given: list[dict[str, Any]]) -> str:
    """The plan with unknown markers dropped and its cited passages listed at the end."""
    if not given:
        return text
    resolved, citations = resolve(text, given)
    if not citations:
        return resolved
    lines = [f"- [{c['marker']}] {label(c)}" for c in citations]
    return resolved.rstrip() + "\n\n## Sources\n\n" + "\n".join(lines) + "\n"
