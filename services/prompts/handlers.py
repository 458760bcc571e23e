"""The prompt registry's subscribers."""

from __future__ import annotations

from services.prompts import service
from shared.contracts.llm import LLMCallCompleted
from shared.messaging import for_schema
from shared.runtime import Runtime
from shared.topology import event_queue, events_exchange


def register(runtime: Runtime) -> None:
    """Log every LLM call of every service."""
    runtime.commands()
    calls = runtime.durable_subscriber(
        event_queue("prompts.llm-calls", LLMCallCompleted.routing_key()), events_exchange
    )

    @calls(filter=for_schema(LLMCallCompleted))
    async def log_llm_call(event: LLMCallCompleted) -> None:
        """Record an LLM call in the execution log (idempotent by message_id)."""
        await service.log_execution(event, runtime.sessionmaker)
