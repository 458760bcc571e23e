"""Planner logic, testable without a broker: explicit dependencies in, effects out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from services.planner import prompts
from services.planner.store import chat_messages, courses, metadata
from shared.contracts.planner import PlanCourse, PlanProposed, PlanProposedPayload
from shared.db import WorkLease, claim_message
from shared.messaging import PermanentError
from shared.outbox import enqueue
from shared.streaming import ChunkStreamer, PublishChunk

_IDS = uuid.UUID("4d3c1b7e-2a8f-4f6e-9c1d-0e5b7a9f3c21")


@dataclass
class PlannerDeps:
    """What the planner's logic needs."""

    sessionmaker: Any
    llm: Any
    publish_chunk: PublishChunk
    wake_relay: Any


def derived_id(*parts: str) -> str:
    """A stable id from its parts: a redelivery computes the same one."""
    return str(uuid.uuid5(_IDS, ":".join(parts)))


async def plan_course(cmd: PlanCourse, deps: PlannerDeps, *, delivery: int = 0) -> bool:
    """Write the welcome plan for a new course, store it, announce it.

    Returns False when the command was already handled (a redelivery): nothing is
    generated or published twice.
    """
    consumer = "planner.plan_course"
    p = cmd.payload
    async with WorkLease(deps.sessionmaker, metadata, consumer, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            existing = await session.execute(
                select(courses.c.course_id).where(courses.c.course_id == p.course_id)
            )
            if existing.first() is not None:
                raise PermanentError(f"course {p.course_id} already exists; choose a new course_id")
        streamer = ChunkStreamer(
            deps.publish_chunk, cmd, step="welcome_plan", course_id=p.course_id, delivery=delivery
        )
        result = await deps.llm.stream(
            task="welcome_plan",
            messages=prompts.welcome_messages(p),
            prompt_name=prompts.WELCOME_PLAN,
            prompt_version=prompts.WELCOME_PLAN_VERSION,
            on_delta=streamer.on_delta,
            on_attempt=streamer.on_attempt,
            job_id=cmd.job_id,
            course_id=p.course_id,
            variables=p.model_dump(mode="json"),
        )
        await streamer.flush()
        await _store_plan(cmd, result, deps, consumer)
    deps.wake_relay()
    return True


async def _store_plan(cmd: PlanCourse, result: Any, deps: PlannerDeps, consumer: str) -> None:
    """The welcome plan, the course and the plan_proposed event, in one transaction."""
    p = cmd.payload
    chat_message_id = derived_id(cmd.message_id, "welcome")
    async with deps.sessionmaker() as session, session.begin():
        if not await claim_message(session, metadata, consumer, cmd.message_id):
            return  # already done (the lease makes this rare); roll back
        created = await session.execute(
            insert(courses)
            .values(
                course_id=p.course_id,
                tenant_id=cmd.tenant_id,
                user_id=cmd.user_id,
                job_id=cmd.job_id,
                profile=p.model_dump(mode="json", exclude={"course_id", "auto_finalize"}),
                auto_finalize=p.auto_finalize,
                status="planning",
            )
            .on_conflict_do_nothing()
            .returning(courses.c.course_id)
        )
        if created.first() is None:
            raise PermanentError(f"course {p.course_id} already exists; choose a new course_id")
        await session.execute(
            insert(chat_messages).values(
                id=chat_message_id,
                course_id=p.course_id,
                role="assistant",
                kind="welcome",
                content=result.text,
                model=result.model,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                latency_ms=int(result.latency_ms),
            )
        )
        await enqueue(
            session,
            metadata,
            cmd.follow(
                PlanProposed,
                PlanProposedPayload(
                    course_id=p.course_id,
                    chat_message_id=chat_message_id,
                    plan_markdown=result.text,
                    model=result.model,
                    input_tokens=result.input_tokens,
                    output_tokens=result.output_tokens,
                ),
                message_id=derived_id(cmd.message_id, "plan_proposed"),
            ),
        )
