"""Planner logic, testable without a broker: explicit dependencies in, effects out.

Every command follows one shape: a :class:`WorkLease` so a redelivery neither
generates nor bills twice, the LLM call streamed as ``job.chunk`` events, then one
transaction that records the message as handled, stores the result and puts the
announcing events in the outbox (ids derived from the command's, so a repeat
publishes nothing new).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.planner import chat, prompts
from services.planner.store import chat_messages, courses, metadata, modules
from shared.contracts.content import WriteLesson, WriteLessonPayload
from shared.contracts.course import GenerationEstimate, ModuleSpec, PlanFinalized
from shared.contracts.course import PlanFinalizedPayload as Finalized
from shared.contracts.planner import (
    FinalizeCourse,
    FinalizeCoursePayload,
    LearnerProfile,
    PlanCourse,
    PlanProposed,
    PlanProposedPayload,
    RefinePlan,
)
from shared.db import WorkLease, claim_message
from shared.ids import derived_id
from shared.messaging import PermanentError
from shared.outbox import enqueue
from shared.streaming import ChunkStreamer, PublishChunk

# what one lesson is expected to take, for the estimate in course.plan_finalized
LESSON_INPUT_TOKENS = 900
LESSON_OUTPUT_TOKENS_PER_HOUR = 900
LESSON_OUTPUT_TOKENS_MIN = 1200


@dataclass
class PlannerDeps:
    """What the planner's logic needs."""

    sessionmaker: Any
    llm: Any
    publish_chunk: PublishChunk
    wake_relay: Any


# ------------------------------------------------------------------ plan a course


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


def _require_planning(row: Any, action: str) -> None:
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
            _require_planning(course, "refined")
            turns = await chat.load_turns(session, course_id)
            summary = await chat.load_summary(session, course_id)
        profile = LearnerProfile.model_validate(course.profile)
        history = chat.plan_history(turns, summary)
        if history.to_summarise:
            summary = await _summarise(cmd, deps, course_id, summary, history.to_summarise)
        streamer = ChunkStreamer(
            deps.publish_chunk, cmd, step="refine_plan", course_id=course_id, delivery=delivery
        )
        result = await deps.llm.stream(
            task="refine_plan",
            messages=prompts.refine_messages(
                profile,
                summary.text if summary else None,
                [t.as_message() for t in history.recent],
                cmd.payload.text,
            ),
            prompt_name=prompts.REFINE_PLAN,
            prompt_version=prompts.REFINE_PLAN_VERSION,
            on_delta=streamer.on_delta,
            on_attempt=streamer.on_attempt,
            job_id=cmd.job_id,
            course_id=course_id,
            variables={"request": cmd.payload.text},
        )
        await streamer.flush()
        async with deps.sessionmaker() as session, session.begin():
            if not await claim_message(session, metadata, consumer, cmd.message_id):
                return False
            course = await load_course(session, cmd, course_id, lock=True)
            _require_planning(course, "refined")
            seq = await chat.next_seq(session, course_id)
            request_id = derived_id(cmd.message_id, "request")
            plan_id = derived_id(cmd.message_id, "plan")
            await _add_turn(
                session, course_id, request_id, seq, "user", "request", content=cmd.payload.text
            )
            await _add_turn(session, course_id, plan_id, seq + 1, "assistant", "plan", result)
            await _touch(session, course_id)
            await enqueue(
                session,
                metadata,
                _proposed(cmd, course_id, plan_id, result, derived_id(cmd.message_id, "pp")),
            )
    deps.wake_relay()
    return True


async def _summarise(
    cmd: RefinePlan,
    deps: PlannerDeps,
    course_id: str,
    previous: chat.Summary | None,
    turns: list[chat.Turn],
) -> chat.Summary:
    """Fold ``turns`` into the chat's rolling summary and store it."""
    result = await deps.llm.stream(
        task="summarise_chat",
        messages=prompts.summarise_messages(
            previous.text if previous else None, [t.as_message() for t in turns]
        ),
        prompt_name=prompts.SUMMARISE_CHAT,
        prompt_version=prompts.SUMMARISE_CHAT_VERSION,
        job_id=cmd.job_id,
        course_id=course_id,
    )
    covers = turns[-1].seq
    async with deps.sessionmaker() as session, session.begin():
        summary_id = derived_id(course_id, "summary", str(covers))
        await chat.store_summary(session, course_id, summary_id, covers, result)
    return chat.Summary(covers=covers, text=result.text)


async def _touch(session: AsyncSession, course_id: str, **values: Any) -> None:
    await session.execute(
        update(courses)
        .where(courses.c.course_id == course_id)
        .values(updated_at=func.now(), **values)
    )


# ------------------------------------------------------------------ finalise


class ModuleDraft(BaseModel):
    """One module as the model proposes it."""

    order: int = Field(ge=1, le=100, description="Position in the course, from 1.")
    title: str = Field(min_length=1, max_length=200, description="Module title.")
    description: str = Field(min_length=1, max_length=2000, description="What it covers.")
    learning_objectives: list[str] = Field(
        min_length=1, max_length=8, description="What the learner can do afterwards."
    )
    estimated_hours: float = Field(gt=0, le=200, description="Study time in hours.")


class CourseDraft(BaseModel):
    """The finalised plan: the schema the model's JSON must match."""

    title: str | None = Field(None, max_length=200, description="A short course title.")
    modules: list[ModuleDraft] = Field(min_length=1, max_length=30, description="In order.")


def module_specs(course_id: str, draft: CourseDraft) -> list[ModuleSpec]:
    """The draft's modules in order, numbered from 1, with stable ids."""
    ordered = sorted(enumerate(draft.modules), key=lambda item: (item[1].order, item[0]))
    return [
        ModuleSpec(
            module_id=derived_id(course_id, "module", str(position)),
            order=position,
            title=m.title.strip(),
            description=m.description.strip(),
            learning_objectives=[o.strip() for o in m.learning_objectives if o.strip()]
            or [f"Explain the key ideas of {m.title.strip()}"],
            estimated_hours=m.estimated_hours,
        )
        for position, (_, m) in enumerate(ordered, start=1)
    ]


def estimate(specs: list[ModuleSpec], llm: Any) -> GenerationEstimate:
    """Tokens and cost of writing every lesson (a rough, documented rule of thumb)."""
    input_tokens = LESSON_INPUT_TOKENS * len(specs)
    output_tokens = sum(
        max(LESSON_OUTPUT_TOKENS_MIN, int(LESSON_OUTPUT_TOKENS_PER_HOUR * m.estimated_hours))
        for m in specs
    )
    return GenerationEstimate(
        calls=len(specs),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=llm.estimate_cost(input_tokens, output_tokens),
        model=llm.models[0],
    )


async def finalize_course(cmd: FinalizeCourse, deps: PlannerDeps, *, delivery: int = 0) -> bool:
    """Turn the latest plan into modules and ask for every lesson at once."""
    consumer = "planner.finalize_course"
    course_id = cmd.payload.course_id
    async with WorkLease(deps.sessionmaker, metadata, consumer, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            course = await load_course(session, cmd, course_id)
            _require_planning(course, "finalised")
            plan = chat.latest_plan(await chat.load_turns(session, course_id))
        if plan is None:
            raise PermanentError(f"course {course_id} has no plan to finalise yet")
        profile = LearnerProfile.model_validate(course.profile)
        streamer = ChunkStreamer(
            deps.publish_chunk, cmd, step="finalise", course_id=course_id, delivery=delivery
        )
        draft, result = await deps.llm.structured(
            task="finalise_modules",
            messages=prompts.finalise_messages(profile, plan),
            schema=CourseDraft,
            prompt_name=prompts.FINALISE_MODULES,
            prompt_version=prompts.FINALISE_MODULES_VERSION,
            on_delta=streamer.on_delta,
            on_attempt=streamer.on_attempt,
            job_id=cmd.job_id,
            course_id=course_id,
        )
        await streamer.flush()
        specs = module_specs(course_id, draft)
        title = (draft.title or "").strip() or course.title or profile.topic
        async with deps.sessionmaker() as session, session.begin():
            if not await claim_message(session, metadata, consumer, cmd.message_id):
                return False
            course = await load_course(session, cmd, course_id, lock=True)
            _require_planning(course, "finalised")
            await _touch(session, course_id, status="generating", title=title)
            await enqueue(
                session,
                metadata,
                cmd.follow(
                    PlanFinalized,
                    Finalized(
                        course_id=course_id,
                        title=title,
                        modules=specs,
                        estimate=estimate(specs, deps.llm),
                        model=result.model,
                        input_tokens=result.input_tokens,
                        output_tokens=result.output_tokens,
                    ),
                    message_id=derived_id(cmd.message_id, "finalized"),
                ),
            )
            # every lesson at once: the content service writes them in parallel
            outline = [m.title for m in specs]
            for spec in specs:
                command = cmd.follow(
                    WriteLesson,
                    WriteLessonPayload(
                        course_id=course_id,
                        course_title=title,
                        module=spec,
                        outline=outline,
                        profile=profile,
                    ),
                    message_id=derived_id(cmd.message_id, "write_lesson", str(spec.order)),
                )
                await session.execute(
                    insert(modules).values(
                        module_id=spec.module_id,
                        course_id=course_id,
                        position=spec.order,
                        title=spec.title,
                        description=spec.description,
                        learning_objectives=spec.learning_objectives,
                        estimated_hours=spec.estimated_hours,
                        lesson_status="pending",
                        command_id=command.message_id,
                    )
                )
                await enqueue(session, metadata, command)
    deps.wake_relay()
    return True
