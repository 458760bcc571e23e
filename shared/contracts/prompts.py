"""Events of the prompt registry (producer: prompts)."""

from __future__ import annotations

from pydantic import Field

from shared.contracts.base import Message, Payload


class PromptActivatedPayload(Payload):
    name: str = Field(description="Template whose label moved.", examples=["content.write_lesson"])
    label: str = Field(description="The label that moved.", examples=["production"])
    version: int | None = Field(
        None, description="The version the label now points at.", examples=[4]
    )
    experiment_id: str | None = Field(
        None, description="An A/B experiment now splitting the label (null when none runs)."
    )


class PromptActivated(Message):
    """What a prompt label resolves to changed: services drop their cached copy of it."""

    SCHEMA = "prompt.activated.v1"
    payload: PromptActivatedPayload
