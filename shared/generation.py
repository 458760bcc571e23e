"""LLM calls rendered from named prompt templates, optionally streamed as a job step.

:func:`complete` is the one way a service calls the LLM: it renders the prompt by
name through the service's :class:`~shared.llm.prompts.PromptSource` (the shipped
template, or the registry's version) and calls the client with the rendered
messages and model settings. :func:`generate` is the same call for the services
that write with the LLM (planner, content): the step's text goes out as coalesced
``job.chunk`` events while the model writes, and the stored result is announced
afterwards through the outbox.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from shared.contracts.base import Message
from shared.llm.prompts import PromptSource
from shared.streaming import ChunkStreamer, PublishChunk

CHUNK_EVENTS_PER_S = 200
"""About how many ``job.chunk`` events one process publishes per second, all its streams
together. Each stream's text goes out every ``min_interval`` (0.1 s) while fewer than
20 stream at once; beyond that the pieces grow instead of the event rate (1,000 streams:
one event per stream every 5 s). Each event costs a publish with a confirm here and a
stored row in the gateway's event log, so a worker holding a thousand generations would
otherwise spend most of its CPU, and the event log's, on 10,000 chunk events a second."""


class PacedStreamer(ChunkStreamer):
    """A :class:`ChunkStreamer` whose interval grows with the streams this process runs."""

    _live: weakref.WeakSet[PacedStreamer] = weakref.WeakSet()  # gone when unreferenced

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        PacedStreamer._live.add(self)

    @property  # type: ignore[override]
    def min_interval(self) -> float:
        return max(self._floor, len(PacedStreamer._live) / CHUNK_EVENTS_PER_S)

    @min_interval.setter
    def min_interval(self, value: float) -> None:
        self._floor = value


class PromptedLLM(Protocol):
    """What a prompted LLM call needs: the client, and where its prompts come from."""

    llm: Any
    prompts: PromptSource


@dataclass
class GenerationDeps:
    """What a service's generation logic needs (explicit, so it is testable alone)."""

    sessionmaker: Any
    llm: Any
    publish_chunk: PublishChunk
    wake_relay: Any
    prompts: PromptSource


async def complete(
    deps: PromptedLLM,
    *,
    task: str,
    prompt: str,
    variables: dict[str, Any],
    subject: str | None,
    step: str | None = None,
    schema: type[BaseModel] | None = None,
    job_id: str | None = None,
    course_id: str | None = None,
    on_delta: Callable[[str], Awaitable[None]] | None = None,
    on_attempt: Callable[[int], Awaitable[None]] | None = None,
    on_done: Callable[[], Awaitable[None]] | None = None,
) -> Any:
    """Render the prompt named ``prompt`` with ``variables`` and make the LLM call.

    ``subject`` (a course or user id) keeps an A/B experiment's choice of version
    sticky; ``step`` names the generation step in ``llm.call_completed``. Returns the
    :class:`~shared.llm.LLMResult`, or ``(value, result)`` with ``schema`` (structured
    output, validated, one repair). Raises
    :class:`~shared.llm.templates.TemplateError` when the variables do not fit the
    template, before any model is called.
    """
    rendered = await deps.prompts.render(prompt, variables, subject=subject)
    call: dict[str, Any] = {
        "task": task,
        "messages": rendered.messages,
        "prompt_name": rendered.name,
        "prompt_version": rendered.version,
        "temperature": rendered.model.temperature,
        "max_tokens": rendered.model.max_tokens,
        "model": rendered.model.model,
        "experiment_id": rendered.experiment_id,
        "prompt_fallback": rendered.fallback,
        "step": step,
        "variables": variables,
        "job_id": job_id,
        "course_id": course_id,
        "on_delta": on_delta,
        "on_attempt": on_attempt,
        "on_done": on_done,
    }
    if schema is None:
        return await deps.llm.stream(**call)
    return await deps.llm.structured(schema=schema, **call)


async def generate(
    deps: GenerationDeps,
    origin: Message,
    *,
    step: str,
    course_id: str | None,
    task: str,
    prompt: str,
    variables: dict[str, Any],
    subject: str | None,
    delivery: int = 0,
    schema: type[BaseModel] | None = None,
) -> Any:
    """The LLM call of :func:`complete` for ``origin``, its text streamed as ``step``.

    Returns what :func:`complete` returns. ``delivery`` numbers the attempts of a
    redelivered message above the earlier ones, so clients drop stale text.
    """
    streamer = PacedStreamer(
        deps.publish_chunk, origin, step=step, course_id=course_id, delivery=delivery
    )
    out = await complete(
        deps,
        task=task,
        prompt=prompt,
        variables=variables,
        subject=subject,
        step=step,
        schema=schema,
        job_id=origin.job_id,
        course_id=course_id,
        on_delta=streamer.on_delta,
        on_attempt=streamer.on_attempt,
        # the last text goes out while the LLM client reports the call, not after it
        on_done=streamer.flush,
    )
    await streamer.flush()  # nothing left, unless the client never called on_done
    return out
