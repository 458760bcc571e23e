"""Job-level events any service may publish: streamed text and failures."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from shared.contracts.base import Message, Payload


class JobChunkPayload(Payload):
    step: str = Field(
        description="Which generation step the text belongs to.",
        examples=["welcome_plan", "lesson:3"],
        max_length=200,
    )
    text: str = Field(description="The next piece of generated text.", examples=["## Module 1"])
    attempt: int = Field(
        1,
        ge=1,
        description=(
            "Generation attempt the text belongs to. When it grows, the client discards the "
            "text it holds for this step: the earlier attempt was cut and is started over."
        ),
        examples=[1],
    )
    index: int = Field(
        ge=0, description="Position of this chunk within the step's attempt.", examples=[0]
    )
    course_id: str | None = Field(None, description="Course the text is for.", examples=["c-1"])


class JobChunk(Message):
    """A piece of text as the LLM writes it. Ephemeral: published directly, not via outbox."""

    SCHEMA = "job.chunk.v1"
    payload: JobChunkPayload


class JobFailedPayload(Payload):
    reason: str = Field(
        description="What failed, in words a person can act on.",
        examples=["The model's modules were not valid JSON after one repair attempt."],
    )
    retryable: bool = Field(
        description="Whether sending the same request again may succeed.", examples=[True]
    )
    failed_schema: str | None = Field(
        None,
        description="Schema of the message that could not be handled.",
        examples=["planner.plan_course.v1"],
    )
    failed_message_id: str | None = Field(
        None, description="message_id of the message that could not be handled."
    )
    step: str | None = Field(None, description="Step that failed.", examples=["welcome_plan"])
    attempts: int = Field(1, ge=0, description="How many times handling was attempted.")
    course_id: str | None = Field(None, description="Course concerned, when known.")
    details: dict[str, Any] = Field(default_factory=dict, description="Extra diagnostic fields.")


class JobFailed(Message):
    """A job stopped: bounded retries are exhausted or the input can never succeed."""

    SCHEMA = "job.failed.v1"
    payload: JobFailedPayload
