"""Contracts about LLM usage: one event per LLM call, for cost and quality tracking."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.contracts.base import Message, Payload

VARIABLES_PREVIEW_MAX = 2000
OUTPUT_PREVIEW_MAX = 4000


class LLMCallCompletedPayload(Payload):
    """What one LLM call cost, how long it took and how its output fared."""

    service: str = Field(
        description="Service that made the call.", examples=["planner"], max_length=100
    )
    task: str = Field(
        description="What the call was for (welcome_plan, write_lesson, quiz, ...).",
        examples=["welcome_plan"],
        max_length=100,
    )
    prompt_name: str = Field(
        description="Name of the prompt template used.",
        examples=["planner.welcome"],
        max_length=200,
    )
    prompt_version: str = Field(
        description="Version of the prompt template used.", examples=["3"], max_length=100
    )
    model: str = Field(
        description="The model that answered (or the last one tried when the call failed).",
        examples=["openai/gpt-4o-mini"],
        max_length=200,
    )
    requested_model: str = Field(
        description="The primary model configured for the call.",
        examples=["openai/gpt-4o"],
        max_length=200,
    )
    input_tokens: int = Field(
        description="Prompt tokens of the answering attempt.", examples=[812], ge=0
    )
    output_tokens: int = Field(
        description="Completion tokens of the answering attempt.", examples=[1045], ge=0
    )
    cost_usd: float | None = Field(
        description="Cost in US dollars; null when the model's price is unknown.",
        examples=[0.00074],
        ge=0,
    )
    latency_ms: float = Field(
        description="Wall time of the whole call in milliseconds, retries included.",
        examples=[5230.5],
        ge=0,
    )
    ttft_ms: float | None = Field(
        description="Time to first token of the answering attempt, in milliseconds.",
        examples=[412.0],
        ge=0,
    )
    status: Literal["ok", "error"] = Field(
        description="ok when the call produced usable output.", examples=["ok"]
    )
    error_kind: str | None = Field(
        None,
        description="Why the call failed: rate_limit, timeout, provider_error or invalid_output.",
        examples=["rate_limit"],
        max_length=50,
    )
    attempts: int = Field(description="Attempts made, over all models tried.", examples=[1], ge=0)
    fallback_used: bool = Field(
        description="True when a fallback model was tried.", examples=[False]
    )
    trace_id: str | None = Field(
        None,
        description="OpenTelemetry trace id (32 hex digits) of the call.",
        examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
        max_length=32,
    )
    course_id: str | None = Field(
        None, description="Course the call worked on, if any.", examples=["c-42"], max_length=200
    )
    variables_preview: str = Field(
        "",
        description=f"The prompt variables as JSON, cut to {VARIABLES_PREVIEW_MAX} characters.",
        examples=['{"topic": "Python", "level": "beginner"}'],
        max_length=VARIABLES_PREVIEW_MAX,
    )
    output_preview: str = Field(
        "",
        description=f"Start of the output, cut to {OUTPUT_PREVIEW_MAX} characters.",
        examples=["# Python — course plan\n..."],
        max_length=OUTPUT_PREVIEW_MAX,
    )
    quality: dict[str, Any] = Field(
        default_factory=dict,
        description="Automatic quality signals of the output.",
        examples=[{"valid_json": True, "repaired": False}],
    )
    experiment_id: str | None = Field(
        None, description="The A/B experiment that chose the prompt version, if any."
    )
    prompt_fallback: bool = Field(
        False,
        description=(
            "The prompt registry could not be asked: the shipped default prompt was used "
            "(prompt_version is then 'default')."
        ),
    )
    step: str | None = Field(
        None,
        max_length=200,
        description="The generation step the call served (welcome_plan, lesson:3, ...).",
        examples=["lesson:3"],
    )


class LLMCallCompleted(Message):
    """An LLM call finished, successfully or not.

    Every service publishes one per call it makes (a structured call that
    needed a repair publishes two). Consumers aggregate cost and quality; the
    previews are capped, so the event is safe to store.
    """

    SCHEMA = "llm.call_completed.v1"
    KIND = "event"
    DESCRIPTION = "An LLM call finished: model, tokens, cost, latency, quality."

    payload: LLMCallCompletedPayload
