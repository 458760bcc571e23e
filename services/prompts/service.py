"""Prompt registry logic: the execution log and users' feedback."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert

from services.prompts.store import executions, feedback
from shared.contracts.llm import LLMCallCompleted
from shared.db import autocommit

_LOGGED = (
    insert(executions)
    .on_conflict_do_nothing(index_elements=["message_id"])
    .returning(executions.c.id)
)
# what an execution row takes from the event's payload, under the same names
_PAYLOAD_COLUMNS = (
    "course_id",
    "service",
    "task",
    "prompt_name",
    "prompt_version",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_kind",
    "attempts",
    "fallback_used",
    "trace_id",
    "quality",
    "experiment_id",
    "prompt_fallback",
    "step",
)


async def log_execution(event: LLMCallCompleted, sessionmaker: Any) -> bool:
    """Store one LLM call in the execution log (once per message_id).

    One statement, in autocommit: no BEGIN and COMMIT around it."""
    p = event.payload
    row = {name: getattr(p, name) for name in _PAYLOAD_COLUMNS}
    row.update(
        message_id=event.message_id,
        job_id=event.job_id,
        variables=p.variables_preview,
        output=p.output_preview,
    )
    async with autocommit(sessionmaker).connect() as conn:
        result = await conn.execute(_LOGGED, row)
        return result.first() is not None


class FeedbackQuery(BaseModel):
    """Body of ``prompts.rpc.record_feedback`` (the gateway checked ownership)."""

    tenant_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    job_id: str | None = Field(None, max_length=200)
    course_id: str | None = Field(None, max_length=200)
    step: str | None = Field(None, max_length=200)
    rating: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=4000)


async def record_feedback(sessionmaker: Any, query: FeedbackQuery) -> dict[str, Any]:
    """Store a rating of a job's output or of one course step (a lesson)."""
    async with sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                insert(feedback)
                .values(**query.model_dump())
                .returning(feedback.c.id, feedback.c.created_at)
            )
        ).one()
    return {"feedback_id": row.id, "created_at": row.created_at.isoformat(), **query.model_dump()}
