"""Content logic, testable without a broker: explicit dependencies in, effects out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.content import prompts
from services.content.queries import latest_by_id, latest_lesson
from services.content.store import lessons, metadata
from shared.citations import format_passages, keep_known, resolve
from shared.contracts.base import Message
from shared.contracts.content import (
    LessonRevised,
    LessonRevisedPayload,
    LessonWritten,
    LessonWrittenPayload,
    ReviseLesson,
    WriteLesson,
    WriteLessonPayload,
)
from shared.db import WorkLease, claim_message
from shared.generation import GenerationDeps, generate
from shared.ids import derived_id
from shared.messaging import PermanentError
from shared.metrics import LESSONS_IN_FLIGHT
from shared.outbox import enqueue

WRITE_CONSUMER = "content.write_lesson"
REVISE_CONSUMER = "content.revise_lesson"


PASSAGES_PER_LESSON = 6


@dataclass
class ContentDeps(GenerationDeps):
    """What the content service's logic needs; ``retriever`` finds passages of the
    course's sources (None: lessons are not grounded)."""

    retriever: Any = None


class LessonChangedError(Exception):
    """Another revision of the lesson landed first; retrying revises the new version."""


def lesson_id_for(course_id: str, module_id: str) -> str:
    """The lesson's id, shared by all its versions."""
    return derived_id("lesson", course_id, module_id)


def _owns(row: Row[Any], cmd: Message) -> bool:
    return row.tenant_id == cmd.tenant_id and row.user_id == cmd.user_id


async def write_lesson(cmd: WriteLesson, deps: ContentDeps, *, delivery: int = 0) -> bool:
    """Write the lesson of one module, store it as version 1, announce ``lesson.written``.

    Returns False when the command was already handled (a redelivery). A second
    command for a module whose lesson exists generates nothing: it re-announces the
    stored lesson, so whoever sent it still hears back.
    """
    p = cmd.payload
    order = p.module.order
    async with WorkLease(deps.sessionmaker, metadata, WRITE_CONSUMER, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            existing = await _existing_lesson(session, p)
        if existing is not None:
            _check_same_lesson(existing, cmd)
            async with deps.sessionmaker() as session, session.begin():
                if await claim_message(session, metadata, WRITE_CONSUMER, cmd.message_id):
                    await _announce_written(session, cmd, existing)
        else:
            passages = await _passages(deps, cmd)
            grounded = {
                "task": "write_grounded_lesson",
                "prompt": prompts.WRITE_GROUNDED_LESSON,
                "variables": prompts.write_grounded_variables(p, format_passages(passages)),
            }
            plain = {
                "task": "write_lesson",
                "prompt": prompts.WRITE_LESSON,
                "variables": prompts.write_variables(p),
            }
            with LESSONS_IN_FLIGHT.track_inprogress():
                result = await generate(
                    deps,
                    cmd,
                    step=f"lesson:{order}",
                    course_id=p.course_id,
                    delivery=delivery,
                    subject=p.course_id,
                    **(grounded if passages else plain),
                )
            markdown, citations = resolve(result.text, passages) if passages else (result.text, [])
            await _store_written(cmd, result, deps, markdown, citations)
    deps.wake_relay()
    return True


async def _passages(deps: ContentDeps, cmd: WriteLesson) -> list[dict[str, Any]]:
    """The passages of the course's sources (its owner's) the module's lesson is written
    from; none when the course has no sources."""
    retriever = getattr(deps, "retriever", None)
    if retriever is None:
        return []
    p = cmd.payload
    found = await retriever.search(
        p.course_id,
        cmd.tenant_id,
        cmd.user_id,
        prompts.retrieval_query(p),
        k=PASSAGES_PER_LESSON,
    )
    return [passage.as_dict() for passage in found]


async def _existing_lesson(session: AsyncSession, p: WriteLessonPayload) -> Row[Any] | None:
    """The stored lesson at the module's position, or else the module's own lesson."""
    row = await latest_lesson(session, p.course_id, p.module.order)
    if row is None:
        row = await latest_by_id(session, lesson_id_for(p.course_id, p.module.module_id))
    return row


def _check_same_lesson(existing: Row[Any], cmd: WriteLesson) -> None:
    """A stored lesson the command collides with must be this learner's, for this module."""
    p = cmd.payload
    order = p.module.order
    if not _owns(existing, cmd):
        raise PermanentError(
            f"course {p.course_id} already has a lesson {order} written for another user"
        )
    if existing.module_id != p.module.module_id:
        raise PermanentError(
            f"lesson {order} of course {p.course_id} was written for module "
            f"{existing.module_id}, not {p.module.module_id}"
        )
    if existing.position != order:
        raise PermanentError(
            f"module {p.module.module_id} of course {p.course_id} has its lesson at "
            f"position {existing.position}, not {order}"
        )


async def _store_written(
    cmd: WriteLesson,
    result: Any,
    deps: ContentDeps,
    markdown: str,
    citations: list[dict[str, Any]],
) -> None:
    """Version 1 of the lesson and its ``lesson.written`` event, in one transaction."""
    p = cmd.payload
    async with deps.sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, WRITE_CONSUMER, cmd.message_id):
            return  # already done (the lease makes this rare)
        created = await session.execute(
            insert(lessons)
            .values(
                lesson_id=lesson_id_for(p.course_id, p.module.module_id),
                version=1,
                course_id=p.course_id,
                module_id=p.module.module_id,
                position=p.module.order,
                title=p.module.title,
                markdown=markdown,
                citations=citations or None,
                tenant_id=cmd.tenant_id,
                user_id=cmd.user_id,
                brief=p.model_dump(mode="json"),
                model=result.model,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                latency_ms=int(result.latency_ms),
                feedback=None,
            )
            .on_conflict_do_nothing()
            .returning(lessons.c.lesson_id)
        )
        stored = await _existing_lesson(session, p)
        if stored is None:  # cannot happen: inserted now, or the conflicting row exists
            raise LessonChangedError(f"lesson {p.module.order} of course {p.course_id} vanished")
        if created.first() is None:
            _check_same_lesson(stored, cmd)  # a concurrent command for the module won
        await _announce_written(session, cmd, stored)


async def _announce_written(session: AsyncSession, cmd: WriteLesson, row: Row[Any]) -> None:
    await enqueue(
        session,
        metadata,
        cmd.follow(
            LessonWritten,
            LessonWrittenPayload(**_payload_fields(row)),
            message_id=derived_id(cmd.message_id, "lesson_written"),
        ),
    )


def _payload_fields(row: Row[Any]) -> dict[str, Any]:
    return {
        "course_id": row.course_id,
        "module_id": row.module_id,
        "lesson_id": row.lesson_id,
        "order": row.position,
        "title": row.title,
        "version": row.version,
        "markdown": row.markdown,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "profile": row.brief.get("profile"),
        "citations": row.citations or [],
    }


async def revise_lesson(cmd: ReviseLesson, deps: ContentDeps, *, delivery: int = 0) -> bool:
    """Rewrite the latest version of a lesson from feedback; store it as the next version.

    Returns False when the command was already handled (a redelivery). Every earlier
    version is kept.
    """
    p = cmd.payload
    async with WorkLease(deps.sessionmaker, metadata, REVISE_CONSUMER, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            current = await latest_lesson(session, p.course_id, p.order)
        if current is None or not _owns(current, cmd):
            # another user's lesson is reported as missing: no existence leak
            raise PermanentError(f"no lesson {p.order} in course {p.course_id}")
        brief = WriteLessonPayload.model_validate(current.brief)
        with LESSONS_IN_FLIGHT.track_inprogress():
            result = await generate(
                deps,
                cmd,
                step=f"revise:{p.order}",
                course_id=p.course_id,
                delivery=delivery,
                task="revise_lesson",
                prompt=prompts.REVISE_LESSON,
                variables=prompts.revise_variables(brief, current.markdown, p.feedback),
                subject=p.course_id,
            )
        markdown, citations = keep_known(result.text, current.citations or [])
        await _store_revision(cmd, current, result, deps, markdown, citations)
    deps.wake_relay()
    return True


async def _store_revision(
    cmd: ReviseLesson,
    current: Row[Any],
    result: Any,
    deps: ContentDeps,
    markdown: str,
    citations: list[dict[str, Any]],
) -> None:
    """The next version of the lesson and its ``lesson.revised`` event, in one transaction."""
    p = cmd.payload
    version = current.version + 1
    async with deps.sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, REVISE_CONSUMER, cmd.message_id):
            return  # already done (the lease makes this rare)
        created = await session.execute(
            insert(lessons)
            .values(
                lesson_id=current.lesson_id,
                version=version,
                course_id=current.course_id,
                module_id=current.module_id,
                position=current.position,
                title=current.title,
                markdown=markdown,
                citations=citations or None,
                tenant_id=current.tenant_id,
                user_id=current.user_id,
                brief=current.brief,
                model=result.model,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                latency_ms=int(result.latency_ms),
                feedback=p.feedback,
            )
            .on_conflict_do_nothing()
            .returning(lessons.c.created_at)
        )
        if created.first() is None:
            # rolls back the claim: the retry revises the version that landed first
            raise LessonChangedError(
                f"lesson {p.order} of course {p.course_id} got version {version} from another "
                "revision meanwhile; retrying on top of it"
            )
        payload = {
            **_payload_fields(current),
            "version": version,
            "markdown": markdown,
            "citations": citations,
            "model": result.model,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
        }
        await enqueue(
            session,
            metadata,
            cmd.follow(
                LessonRevised,
                LessonRevisedPayload(
                    **payload, previous_version=current.version, feedback=p.feedback
                ),
                message_id=derived_id(cmd.message_id, "lesson_revised"),
            ),
        )
