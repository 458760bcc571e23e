"""Finalisation: the latest plan becomes validated modules, then every lesson is asked for.

The modules, ``course.plan_finalized`` and one ``content.write_lesson`` per module
commit in one transaction (outbox): the relay sends them all at once, so the
content service writes the lessons in parallel.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert

from services.planner import chat, prompts
from services.planner.service import PlannerDeps, load_course, require_planning, touch
from services.planner.store import metadata, modules
from shared.contracts.content import WriteLesson, WriteLessonPayload
from shared.contracts.course import GenerationEstimate, ModuleSpec, PlanFinalized
from shared.contracts.course import PlanFinalizedPayload as Finalized
from shared.contracts.planner import FinalizeCourse, LearnerProfile
from shared.db import WorkLease, claim_message
from shared.generation import generate
from shared.ids import derived_id
from shared.messaging import PermanentError
from shared.outbox import enqueue

# what one lesson is expected to take, for the estimate in course.plan_finalized
LESSON_INPUT_TOKENS = 900
LESSON_OUTPUT_TOKENS_PER_HOUR = 900
LESSON_OUTPUT_TOKENS_MIN = 1200
# each lesson is then assessed: a quiz and a coding exercise, each reading the lesson
ASSESSMENT_CALLS_PER_LESSON = 2
ASSESSMENT_PROMPT_TOKENS = 400  # instructions, on top of the lesson itself
ASSESSMENT_OUTPUT_TOKENS = 900


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


_MARKER = re.compile(r"\s?\[S\d{1,3}\]")


def _uncited(text: str) -> str:
    """A module's text without the plan's [S<n>] markers: a lesson numbers its own."""
    return _MARKER.sub("", text).strip()


def module_specs(course_id: str, draft: CourseDraft) -> list[ModuleSpec]:
    """The draft's modules in order, numbered from 1, with stable ids."""
    ordered = sorted(enumerate(draft.modules), key=lambda item: (item[1].order, item[0]))
    return [
        ModuleSpec(
            module_id=derived_id(course_id, "module", str(position)),
            order=position,
            title=_uncited(m.title),
            description=_uncited(m.description),
            learning_objectives=[_uncited(o) for o in m.learning_objectives if _uncited(o)]
            or [f"Explain the key ideas of {_uncited(m.title)}"],
            estimated_hours=m.estimated_hours,
        )
        for position, (_, m) in enumerate(ordered, start=1)
    ]


def estimate(specs: list[ModuleSpec], llm: Any) -> GenerationEstimate:
    """Tokens and cost of writing and assessing every lesson (a documented rule of thumb).

    Counts an exercise for every lesson: lessons without code skip it, so this errs high.
    """
    lessons = [
        max(LESSON_OUTPUT_TOKENS_MIN, int(LESSON_OUTPUT_TOKENS_PER_HOUR * m.estimated_hours))
        for m in specs
    ]
    per_call = ASSESSMENT_CALLS_PER_LESSON
    input_tokens = LESSON_INPUT_TOKENS * len(specs) + per_call * sum(
        ASSESSMENT_PROMPT_TOKENS + written for written in lessons
    )
    output_tokens = sum(lessons) + per_call * ASSESSMENT_OUTPUT_TOKENS * len(specs)
    return GenerationEstimate(
        calls=len(specs) * (1 + per_call),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=llm.estimate_cost(input_tokens, output_tokens),
        model=llm.models[0],
    )


async def finalize_course(
    cmd: FinalizeCourse, deps: PlannerDeps, *, delivery: int = 0, max_modules: int = 30
) -> bool:
    """Turn the latest plan into modules and ask for every lesson at once.

    A plan of more than ``max_modules`` modules (``LECTERN_MAX_MODULES``) is refused:
    the job fails saying so, and the course stays in planning to be refined.
    """
    consumer = "planner.finalize_course"
    course_id = cmd.payload.course_id
    async with WorkLease(deps.sessionmaker, metadata, consumer, cmd.message_id) as ours:
        if not ours:
            return False
        async with deps.sessionmaker() as session:
            course = await load_course(session, cmd, course_id)
            require_planning(course, "finalised")
            plan = chat.latest_plan(await chat.load_turns(session, course_id))
        if plan is None:
            raise PermanentError(f"course {course_id} has no plan to finalise yet")
        profile = LearnerProfile.model_validate(course.profile)
        draft, result = await generate(
            deps,
            cmd,
            step="finalise",
            course_id=course_id,
            delivery=delivery,
            schema=CourseDraft,
            task="finalise_modules",
            prompt=prompts.FINALISE_MODULES,
            variables=prompts.finalise_variables(profile, plan),
            subject=course_id,
        )
        if len(draft.modules) > max_modules:
            raise PermanentError(
                f"the plan has {len(draft.modules)} modules and a course may have at most "
                f"{max_modules} (LECTERN_MAX_MODULES): ask in the chat for fewer, longer "
                "modules, then finalise again"
            )
        specs = module_specs(course_id, draft)
        title = (draft.title or "").strip() or course.title or profile.topic
        async with deps.sessionmaker() as session, session.begin():
            if not await claim_message(session, metadata, consumer, cmd.message_id):
                return False
            course = await load_course(session, cmd, course_id, lock=True)
            require_planning(course, "finalised")
            await touch(session, course_id, status="generating", title=title)
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
        deps.wake_relay()  # committed: announce now, not after releasing the lease
    return True
