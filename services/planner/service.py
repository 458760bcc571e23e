"""Planner logic, testable without a broker: explicit dependencies in, effects out.

Every command follows one shape: a :class:`WorkLease` so a redelivery neither
generates nor bills twice, the LLM call streamed as ``job.chunk`` events, then one
transaction that records the message as handled, stores the result and puts the
announcing events in the outbox (ids derived from the command's, so a repeat
publishes nothing new).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.planner import chat, grounding, prompts
from services.planner.store import chat_messages, courses, metadata
from shared.citations import format_passages
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    LearnerProfile,
    PlanCourse,
    PlanProposed,
    PlanProposedPayload,
    RefinePlan,
)
from shared.db import WorkLease, autocommit, claim_message
from shared.generation import complete, generate
from shared.ids import derived_id
from shared.messaging import PermanentError
from shared.outbox import enqueue

PlannerDeps = grounding.PlannerDeps  # what the planner's logic needs


# ------------------------------------------------------------------ plan a course


# whether the course is taken, and whether the sender's course has sources (built once)
_COURSE_CHECK = select(
    exists().where(courses.c.course_id == bindparam("course_id")).label("taken"),
    grounding.sources_exist(
        bindparam("course_id"), bindparam("tenant_id"), bindparam("user_id")
    ).label("has"),
)


async def plan_course(cmd: PlanCourse, deps: PlannerDeps, *, delivery: int = 0) -> bool:
    """Write the welcome plan for a new course, store it, announce it.

    With ``auto_finalize`` the course is finalised next without waiting for the
    learner. Returns False when the command was already handled (a redelivery).
    """
    consumer = "planner.plan_course"
    p = cmd.payload
    async with WorkLease(deps.sessionmaker, metadata, consumer, cmd.message_id) as ours:
        if not ours:
            return False
        async with autocommit(deps.sessionmaker).connect() as conn:  # one statement
            seen = await conn.execute(
                _COURSE_CHECK,
                {"course_id": p.course_id, "tenant_id": cmd.tenant_id, "user_id": cmd.user_id},
            )
        taken, has = seen.one()
        if taken:
            raise PermanentError(f"course {p.course_id} already exists; choose a new course_id")
        given = await grounding.passages(deps, cmd, p.course_id, prompts.plan_query(p), has=has)
        how = {
            "task": "welcome_plan",
            "prompt": prompts.WELCOME_PLAN,
            "variables": prompts.welcome_variables(p),
        }
        if given:  # the author's materials shape the plan
            how = {
                "task": "grounded_welcome_plan",
                "prompt": prompts.GROUNDED_WELCOME_PLAN,
                "variables": prompts.grounded_welcome_variables(p, format_passages(given)),
            }
        result = await generate(
            deps,
            cmd,
            step="welcome_plan",
            course_id=p.course_id,
            delivery=delivery,
            subject=p.course_id,
            **how,
        )
        if given:
            result = replace(result, text=grounding.cite(result.text, given))
        await _store_plan(cmd, result, deps, consumer)
        deps.wake_relay()  # committed: announce now, not after releasing the lease
    return True


async def _store_plan(cmd: PlanCourse, result: Any, deps: PlannerDeps, consumer: str) -> None:
    """The course, its welcome plan and plan_proposed (and autopilot's finalise) at once."""
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
                title=p.topic,
            )
            .on_conflict_do_nothing()
            .returning(courses.c.course_id)
        )
        if created.first() is None:
            raise PermanentError(f"course {p.course_id} already exists; choose a new course_id")
        await _add_turn(session, p.course_id, chat_message_id, 1, "assistant", "welcome", result)
        await enqueue(
            session,
            metadata,
            _proposed(cmd, p.course_id, chat_message_id, result, derived_id(cmd.message_id, "pp")),
        )
        if p.auto_finalize:
            await enqueue(
                session,
                metadata,
                cmd.follow(
                    FinalizeCourse,
                    FinalizeCoursePayload(course_id=p.course_id),
                    message_id=derived_id(cmd.message_id, "auto_finalize"),
                ),
            )


def _proposed(origin: Any, course_id: str, chat_id: str, result: Any, message_id: str) -> Any:
    return origin.follow(
        PlanProposed,
        PlanProposedPayload(
            course_id=course_id,
            chat_message_id=chat_id,
            plan_markdown=result.text,
            model=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
        ),
        message_id=message_id,
    )


async def _add_turn(
    session: AsyncSession,
    course_id: str,
    message_id: str,
    seq: int,
    role: str,
    kind: str,
    result: Any = None,
    content: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "id": message_id,
        "course_id": course_id,
        "role": role,
        "kind": kind,
        "seq": seq,
        "content": content if content is not None else result.text,
    }
    if result is not None:
        values |= {
            "model": result.model,
            "input_tokens": result.input_tokens,
            "output_tokens": result.output_tokens,
            "latency_ms": int(result.latency_ms),
        }
    await session.execute(insert(chat_messages).values(**values))


# ------------------------------------------------------------------ the course row


async def load_course(
    session: AsyncSession, origin: Any, course_id: str, *, lock: bool = False
) -> Any:
    """The course the message is about, if the sender may act on it (else PermanentError)."""
    query = select(courses).where(courses.c.course_id == course_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    # another tenant's or user's course is as unknown as a missing one
    if row is None or row.tenant_id != origin.tenant_id or row.user_id != origin.user_id:
        raise PermanentError(f"course {course_id} not found")
    return row


def require_planning(row: Any, action: str) -> None:
    if row.status != "planning":
        raise PermanentError(
            f"course {row.course_id} is {row.status}: its plan can only be {action} "
            "before it is finalised"
        )


# ------------------------------------------------------------------ refine the plan


async def refine_plan(cmd: RefinePlan, deps: PlannerDeps, *, delivery: int = 0) -> bool:
    """Answer the learner's message in the planning chat with an updated plan."""
    consumer = "planner.refine_plan"
    course_id = cmd.payload.course_id
    async with WorkLease(deps.sessionmaker, metadata, consumer, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            course = await load_course(session, cmd, course_id)
            require_planning(course, "refined")
            turns = await chat.load_turns(session, course_id)
            summary = await chat.load_summary(session, course_id)
            has = await grounding.has_sources(session, cmd, course_id)
        profile = LearnerProfile.model_validate(course.profile)
        history = chat.plan_history(turns, summary)
        if history.to_summarise:
            summary = await _summarise(cmd, deps, course_id, summary, history.to_summarise)
        chat_parts = (
            profile,
            summary.text if summary else None,
            [t.as_message() for t in history.recent],
            cmd.payload.text,
        )
        query = prompts.plan_query(profile, cmd.payload.text)
        given = await grounding.passages(deps, cmd, course_id, query, has=has)
        how = {
            "task": "refine_plan",
            "prompt": prompts.REFINE_PLAN,
            "variables": prompts.refine_variables(*chat_parts),
        }
        if given:
            how = {
                "task": "grounded_refine_plan",
                "prompt": prompts.GROUNDED_REFINE_PLAN,
                "variables": prompts.grounded_refine_variables(*chat_parts, format_passages(given)),
            }
        result = await generate(
            deps,
            cmd,
            step="refine_plan",
            course_id=course_id,
            delivery=delivery,
            subject=course_id,
            **how,
        )
        if given:
            result = replace(result, text=grounding.cite(result.text, given))
        async with deps.sessionmaker() as session, session.begin():
            if not await claim_message(session, metadata, consumer, cmd.message_id):
                return False
            course = await load_course(session, cmd, course_id, lock=True)
            require_planning(course, "refined")
            seq = await chat.next_seq(session, course_id)
            request_id = derived_id(cmd.message_id, "request")
            plan_id = derived_id(cmd.message_id, "plan")
            await _add_turn(
                session, course_id, request_id, seq, "user", "request", content=cmd.payload.text
            )
            await _add_turn(session, course_id, plan_id, seq + 1, "assistant", "plan", result)
            await touch(session, course_id)
            await enqueue(
                session,
                metadata,
                _proposed(cmd, course_id, plan_id, result, derived_id(cmd.message_id, "pp")),
            )
        deps.wake_relay()  # committed: announce now, not after releasing the lease
    return True


async def _summarise(
    cmd: RefinePlan,
    deps: PlannerDeps,
    course_id: str,
    previous: chat.Summary | None,
    turns: list[chat.Turn],
) -> chat.Summary:
    """Fold ``turns`` into the chat's rolling summary and store it."""
    # not streamed to the learner: the summary only shapes the next prompts
    result = await complete(
        deps,
        task="summarise_chat",
        prompt=prompts.SUMMARISE_CHAT,
        variables=prompts.summarise_variables(
            previous.text if previous else None, [t.as_message() for t in turns]
        ),
        subject=course_id,
        step="summarise_chat",
        job_id=cmd.job_id,
        course_id=course_id,
    )
    covers = turns[-1].seq
    async with deps.sessionmaker() as session, session.begin():
        summary_id = derived_id(course_id, "summary", str(covers))
        await chat.store_summary(session, course_id, summary_id, covers, result)
    return chat.Summary(covers=covers, text=result.text)


async def touch(session: AsyncSession, course_id: str, **values: Any) -> None:
    await session.execute(
        update(courses)
        .where(courses.c.course_id == course_id)
        .values(updated_at=func.now(), **values)
    )
