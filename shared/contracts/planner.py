"""Commands the planner consumes and events it produces."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import Message, Payload

Level = Literal["beginner", "intermediate", "advanced"]
Style = Literal["theory", "practice", "mixed"]
Pace = Literal["intensive", "moderate", "relaxed"]
GoalContext = Literal["academic", "corporate", "personal"]


class LearnerProfile(Payload):
    """What the learner wants; the HTTP body of POST /v1/courses."""

    topic: str = Field(
        min_length=2,
        max_length=200,
        description="What to learn.",
        examples=["Python asyncio"],
    )
    level: Level = Field("beginner", description="Current level.", examples=["intermediate"])
    duration_hours: float = Field(
        10, gt=0, le=500, description="Total study time, in hours.", examples=[12]
    )
    expectations: str = Field(
        "",
        max_length=2000,
        description="What the learner hopes to get out of it.",
        examples=["Write a concurrent web scraper"],
    )
    style: Style = Field("mixed", description="Theory, practice or both.", examples=["practice"])
    pace: Pace = Field("moderate", description="How fast to go.", examples=["moderate"])
    goal_context: GoalContext = Field(
        "personal", description="Why the learner is learning.", examples=["corporate"]
    )
    language: str = Field(
        "en",
        min_length=2,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
        description="Language of the course (BCP 47 tag).",
        examples=["en", "ru", "pt-BR"],
    )


class PlanCoursePayload(LearnerProfile):
    course_id: str = Field(
        min_length=1,
        max_length=200,
        description="Id of the course to plan; the client chooses it (a UUID is a good choice).",
        examples=["5b0f3c1e-9a0e-4b8a-bb0e-3f2f1a7d9e21"],
    )
    auto_finalize: bool = Field(
        False,
        description="Run plan → finalise → lessons without the chat (for internal systems).",
        examples=[False],
    )


class PlanCourse(Message):
    """Plan a course: write the welcome plan for a learner profile."""

    SCHEMA = "planner.plan_course.v1"
    KIND = "command"
    payload: PlanCoursePayload


class PlanProposedPayload(Payload):
    course_id: str = Field(description="The course planned.", examples=["5b0f3c1e"])
    chat_message_id: str = Field(description="Id of the stored chat message holding the plan.")
    plan_markdown: str = Field(description="The proposed plan, as markdown.")
    model: str = Field(description="Model that wrote the plan.", examples=["offline/lectern"])
    input_tokens: int = Field(ge=0, description="Prompt tokens used.")
    output_tokens: int = Field(ge=0, description="Completion tokens used.")


class PlanProposed(Message):
    """A plan was proposed in the course's planning chat."""

    SCHEMA = "course.plan_proposed.v1"
    payload: PlanProposedPayload


class RefinePlanPayload(Payload):
    course_id: str = Field(
        min_length=1, max_length=200, description="Course whose plan to refine.", examples=["c-1"]
    )
    text: str = Field(
        min_length=1,
        max_length=4000,
        description="The learner's message: what to change in the plan.",
        examples=["Fewer theory modules, add a project at the end."],
    )


class RefinePlan(Message):
    """Continue a course's planning chat: the LLM revises the plan from the learner's message."""

    SCHEMA = "planner.refine_plan.v1"
    KIND = "command"
    payload: RefinePlanPayload


class FinalizeCoursePayload(Payload):
    course_id: str = Field(
        min_length=1, max_length=200, description="Course to finalise.", examples=["c-1"]
    )


class FinalizeCourse(Message):
    """Turn the course's latest plan into modules, then write every lesson in parallel."""

    SCHEMA = "planner.finalize_course.v1"
    KIND = "command"
    payload: FinalizeCoursePayload
