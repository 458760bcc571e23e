"""Events of the course process: finalised plan, progress, readiness (producer: planner)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import Message, Payload


class ModuleSpec(Payload):
    """One module of a finalised course."""

    module_id: str = Field(description="Stable id of the module.", examples=["8c1d…"])
    order: int = Field(ge=1, description="Position in the course, from 1.", examples=[1])
    title: str = Field(description="Module title.", examples=["Coroutines and the event loop"])
    description: str = Field(description="What the module covers.")
    learning_objectives: list[str] = Field(
        description="What the learner can do after the module.",
        examples=[["Explain what await does"]],
    )
    estimated_hours: float = Field(gt=0, description="Study time, in hours.", examples=[2.0])


class GenerationEstimate(Payload):
    """Tokens and cost the rest of the course's generation is expected to take (lessons and
    their assessments)."""

    calls: int = Field(
        ge=0,
        description="LLM calls still to make: per lesson, the lesson, its quiz and its exercise.",
    )
    input_tokens: int = Field(ge=0, description="Estimated prompt tokens.")
    output_tokens: int = Field(ge=0, description="Estimated completion tokens.")
    cost_usd: float | None = Field(
        None, description="Estimated cost in USD; null when the model has no known price."
    )
    model: str = Field(description="Model the estimate is priced for.")


class PlanFinalizedPayload(Payload):
    course_id: str = Field(description="The course finalised.", examples=["c-1"])
    title: str = Field(description="Course title.", examples=["Python asyncio"])
    modules: list[ModuleSpec] = Field(description="The course's modules, in order.")
    estimate: GenerationEstimate = Field(description="What writing the lessons will cost.")
    model: str = Field(description="Model that structured the plan.")
    input_tokens: int = Field(ge=0, description="Prompt tokens used by finalisation.")
    output_tokens: int = Field(ge=0, description="Completion tokens used by finalisation.")


class PlanFinalized(Message):
    """A course's plan became modules; a lesson is now being written for each."""

    SCHEMA = "course.plan_finalized.v1"
    payload: PlanFinalizedPayload


class CourseProgressPayload(Payload):
    course_id: str = Field(description="The course.", examples=["c-1"])
    done: int = Field(
        ge=0,
        description="Steps done so far: lessons written plus lessons assessed.",
        examples=[3],
    )
    total: int = Field(
        ge=1, description="Steps in the course: two per module (lesson, assessment).", examples=[8]
    )
    module_id: str = Field(description="Module whose lesson or assessment just landed.")
    lesson_id: str = Field(description="The lesson that just landed or was assessed.")
    step: Literal["lesson", "assessment"] = Field(
        "lesson", description="What just landed: the lesson, or its assessment."
    )
    lessons_done: int = Field(0, ge=0, description="Lessons written so far.", examples=[2])
    assessments_done: int = Field(0, ge=0, description="Lessons assessed so far.", examples=[1])


class CourseProgress(Message):
    """Another lesson, or another lesson's assessment, of a course landed."""

    SCHEMA = "course.progress.v1"
    payload: CourseProgressPayload


class CourseLessonRef(Payload):
    """Where a module's lesson is."""

    module_id: str = Field(description="The module.")
    order: int = Field(ge=1, description="Position of the module, from 1.")
    title: str = Field(description="Module title.")
    lesson_id: str = Field(description="The module's lesson.")
    quiz_id: str | None = Field(None, description="The lesson's quiz.")
    exercise_id: str | None = Field(
        None, description="The lesson's coding exercise; null when the lesson has no code."
    )


class CourseReadyPayload(Payload):
    course_id: str = Field(description="The finished course.", examples=["c-1"])
    title: str = Field(description="Course title.")
    modules: list[CourseLessonRef] = Field(description="Every module with its lesson.")


class CourseReady(Message):
    """Every lesson of a course is written and assessed: it can be read, taken and exported."""

    SCHEMA = "course.ready.v1"
    payload: CourseReadyPayload
