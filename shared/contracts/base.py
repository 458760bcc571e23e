"""The envelope every Lectern message carries, and the registry of message types.

A message type is a subclass of :class:`Message` naming its ``SCHEMA``
(``<routing key>.v<N>``) and giving ``payload`` a pydantic model. A breaking
change is a new type with ``.v2``, published beside v1 until consumers move.
Consumers ignore unknown fields.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

COMMANDS_EXCHANGE = "lectern.commands"
EVENTS_EXCHANGE = "lectern.events"

REGISTRY: dict[str, type[Message]] = {}


def new_id() -> str:
    """A fresh identifier (UUID4 as text)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every payload: unknown fields are ignored so producers can add fields."""

    model_config = ConfigDict(extra="ignore")


class Message(BaseModel):
    """The common envelope. Subclasses set ``SCHEMA``, ``KIND`` and ``payload``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    SCHEMA: ClassVar[str] = ""
    KIND: ClassVar[Literal["command", "event"]] = "event"
    DESCRIPTION: ClassVar[str] = ""

    message_id: str = Field(
        default_factory=new_id,
        description="Unique id of this message; the idempotency key consumers record.",
        examples=["3f6c2a8e-1d2b-4c9a-9a57-0b8e2f1c6d40"],
        min_length=1,
        max_length=200,
    )
    job_id: str = Field(
        description="The job a client watches (GET /v1/jobs/{job_id}/events).",
        examples=["7d1f0b0e-5c4e-4d0f-8f5a-2f8b9e1a3c11"],
        min_length=1,
        max_length=200,
    )
    correlation_id: str = Field(
        description="Ties every message of one request together; events echo the command's.",
        examples=["lms-request-42"],
        min_length=1,
        max_length=200,
    )
    causation_id: str | None = Field(
        None,
        description="message_id of the message that caused this one.",
        examples=["3f6c2a8e-1d2b-4c9a-9a57-0b8e2f1c6d40"],
        max_length=200,
    )
    tenant_id: str = Field(
        "default",
        description="Tenant the work belongs to.",
        examples=["acme"],
        min_length=1,
        max_length=200,
    )
    user_id: str | None = Field(
        None, description="User on whose behalf the work runs.", examples=["u-1"], max_length=200
    )
    schema_id: str = Field(
        "",
        alias="schema",
        description="Message type and version, e.g. planner.plan_course.v1.",
        examples=["planner.plan_course.v1"],
    )
    occurred_at: datetime = Field(
        default_factory=utcnow, description="When the producer created the message (UTC)."
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        schema = cls.__dict__.get("SCHEMA")
        if schema:
            if schema in REGISTRY and REGISTRY[schema] is not cls:
                raise ValueError(f"duplicate message schema {schema}")
            REGISTRY[schema] = cls

    def model_post_init(self, context: Any, /) -> None:
        if not self.schema_id:
            self.schema_id = self.SCHEMA

    @classmethod
    def routing_key(cls) -> str:
        """Routing key: the schema without its version suffix."""
        return cls.SCHEMA.rsplit(".v", 1)[0]

    @classmethod
    def exchange(cls) -> str:
        """The exchange this type is published on."""
        return COMMANDS_EXCHANGE if cls.KIND == "command" else EVENTS_EXCHANGE

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict, field aliases applied (``schema``)."""
        return self.model_dump(mode="json", by_alias=True)

    def follow(self, cls: type[Message], payload: Payload, **overrides: Any) -> Message:
        """A message caused by this one: same job, correlation, tenant and user."""
        fields: dict[str, Any] = {
            "job_id": self.job_id,
            "correlation_id": self.correlation_id,
            "causation_id": self.message_id,
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "payload": payload,
        }
        fields.update(overrides)
        return cls(**fields)
