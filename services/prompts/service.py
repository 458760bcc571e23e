"""Prompt registry logic: the execution log and users' feedback."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import insert

from services.prompts.store import executions, feedback
from shared.contracts.llm import LLMCallCompleted


async def log_execution(event: LLMCallCompleted, sessionmaker: Any) -> bool:
    """Store one LLM call in the execution log (once per message_id)."""
    p = event.payload
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            insert(executions)
            .values(
                message_id=event.message_id,
                job_id=event.job_id,
                course_id=p.course_id,
                service=p.service,
                task=p.task,
                prompt_name=p.prompt_name,
                prompt_version=p.prompt_version,
                model=p.model,
                input_tokens=p.input_tokens,
                output_tokens=p.output_tokens,
                cost_usd=p.cost_usd,
                latency_ms=p.latency_ms,
                ttft_ms=p.ttft_ms,
                status=p.status,
                error_kind=p.error_kind,
                attempts=p.attempts,
                fallback_used=p.fallback_used,
                trace_id=p.trace_id,
                variables=p.variables_preview,
                output=p.output_preview,
                quality=p.quality,
                experiment_id=p.experiment_id,
                prompt_fallback=p.prompt_fallback,
                step=p.step,
            )
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(executions.c.id)
        )
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
