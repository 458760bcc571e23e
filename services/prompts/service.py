"""Prompt registry logic: the execution log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from services.prompts.store import executions
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
            )
            .on_conflict_do_nothing(index_elements=["message_id"])
            .returning(executions.c.id)
        )
        return result.first() is not None
