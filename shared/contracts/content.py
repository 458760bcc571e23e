"""Commands the content service consumes and events it produces."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.contracts.base import Message, Payload
from shared.contracts.course import ModuleSpec
from shared.contracts.planner import LearnerProfile


class WriteLessonPayload(Payload):
    course_id: str = Field(description="Course the lesson belongs to.", examples=["c-1"])
    course_title: str = Field(description="Title of the course.", examples=["Python asyncio"])
    module: ModuleSpec = Field(description="The module to write the lesson for.")
    outline: list[str] = Field(
        default_factory=list,
        description="Titles of all modules in order, so the lesson fits the course.",
    )
    profile: LearnerProfile = Field(description="The learner the lesson is personalised for.")


class WriteLesson(Message):
    """Write the lesson of one module, streamed as ``job.chunk`` events."""

    SCHEMA = "content.write_lesson.v1"
    KIND = "command"
    payload: WriteLessonPayload


class ReviseLessonPayload(Payload):
    course_id: str = Field(description="Course of the lesson.", examples=["c-1"])
    order: int = Field(ge=1, description="Module position of the lesson, from 1.", examples=[2])
    feedback: str = Field(
        min_length=1,
        max_length=4000,
        description="What to change.",
        examples=["More examples, less jargon."],
    )


class ReviseLesson(Message):
    """Rewrite one lesson from feedback; the previous version is kept."""

    SCHEMA = "content.revise_lesson.v1"
    KIND = "command"
    payload: ReviseLessonPayload


class Citation(BaseModel):
    """A passage of the author's sources a lesson cites with ``[S<n>]`` in its text."""

    marker: str = Field(description="The marker in the text, e.g. S1.", examples=["S1"])
    source_id: str = Field(description="The cited source.")
    filename: str = Field(description="The source's file name.", examples=["notes.md"])
    page: int | None = Field(None, description="Page of a PDF, from 1.")
    section: str = Field("", description="Heading path of the passage ('A > B'), if any.")
    chunk_id: str = Field(description="The cited passage (chunk).")
    quote: str = Field(description="The start of the passage, for display.")


class LessonWrittenPayload(Payload):
    course_id: str = Field(description="Course of the lesson.", examples=["c-1"])
    module_id: str = Field(description="Module the lesson is for.")
    lesson_id: str = Field(description="Stable id of the lesson (same across versions).")
    order: int = Field(ge=1, description="Module position, from 1.", examples=[1])
    title: str = Field(description="Lesson title.")
    version: int = Field(ge=1, description="Version of the lesson, from 1.", examples=[1])
    markdown: str = Field(description="The lesson, as markdown (mermaid diagrams in fences).")
    model: str = Field(description="Model that wrote it.", examples=["offline/lectern"])
    input_tokens: int = Field(ge=0, description="Prompt tokens used.")
    output_tokens: int = Field(ge=0, description="Completion tokens used.")
    profile: LearnerProfile | None = Field(
        None,
        description="The learner the lesson was written for, so its assessment fits them too.",
    )
    citations: list[Citation] = Field(
        default_factory=list,
        description="Passages of the course's sources the lesson cites (empty without sources).",
    )


class LessonWritten(Message):
    """A module's lesson was written and stored."""

    SCHEMA = "lesson.written.v1"
    payload: LessonWrittenPayload


class LessonRevisedPayload(LessonWrittenPayload):
    previous_version: int = Field(ge=1, description="The version this one replaces (kept).")
    feedback: str = Field(description="The feedback the revision answers.")


class LessonRevised(Message):
    """A lesson was rewritten from feedback; its previous version is kept."""

    SCHEMA = "lesson.revised.v1"
    payload: LessonRevisedPayload
