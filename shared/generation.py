"""One generation step of a job: an LLM call whose text streams to the client.

The services that write with the LLM (planner, content) share this: the step's
text goes out as coalesced ``job.chunk`` events while the model writes, and the
stored result is announced afterwards through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.contracts.base import Message
from shared.streaming import ChunkStreamer, PublishChunk


@dataclass
class GenerationDeps:
    """What a service's generation logic needs (explicit, so it is testable alone)."""

    sessionmaker: Any
    llm: Any
    publish_chunk: PublishChunk
    wake_relay: Any


async def generate(
    deps: GenerationDeps,
    origin: Message,
    *,
    step: str,
    course_id: str | None,
    delivery: int = 0,
    schema: type[BaseModel] | None = None,
    **call: Any,
) -> Any:
    """Run the LLM call ``call`` (task, messages, prompt_name, ...) streaming as ``step``.

    Returns the :class:`~shared.llm.LLMResult`, or ``(value, result)`` with ``schema``
    (structured output, validated, one repair). ``delivery`` numbers the attempts of
    a redelivered message above the earlier ones, so clients drop stale text.
    """
    streamer = ChunkStreamer(
        deps.publish_chunk, origin, step=step, course_id=course_id, delivery=delivery
    )
    kwargs = {
        **call,
        "on_delta": streamer.on_delta,
        "on_attempt": streamer.on_attempt,
        "job_id": origin.job_id,
        "course_id": course_id,
    }
    if schema is None:
        out = await deps.llm.stream(**kwargs)
    else:
        out = await deps.llm.structured(schema=schema, **kwargs)
    await streamer.flush()
    return out
