"""Streaming generated text to clients as ``job.chunk`` events.

The first delta of each attempt is published at once (the learner sees the model start
writing without waiting); later deltas are coalesced (every ``min_interval`` seconds or
``max_chars``) so a token-per-message stream does not flood the broker and the event log. Chunks
are ephemeral and published directly; the stored result is announced through the
outbox. When the LLM client starts a new attempt (a stream cut mid-way), the chunk
``attempt`` grows and the client discards the text it held for that step.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.message import StreamMessage

from shared.contracts.base import Message
from shared.contracts.jobs import JobChunk, JobChunkPayload
from shared.db import lease_taken_after_ms
from shared.wire import attempt_of, redeliveries_of

PublishChunk = Callable[[JobChunk], Awaitable[Any]]


def delivery_ordinal(msg: StreamMessage[Any] | None) -> int:
    """How many times this message has been delivered before (0 the first time).

    Counts our own retries (attempt header) and the broker's redeliveries
    (``x-delivery-count`` on quorum queues), so every delivery gets a higher number.
    """
    if msg is None:
        return 0
    headers = msg.headers or {}
    # headers come from whoever published: garbage counts as a first delivery
    return attempt_of(headers, 10_000) - 1 + redeliveries_of(headers)


class ChunkStreamer:
    """Turns LLM deltas into coalesced ``job.chunk`` events for one step of a job."""

    # each delivery leaves room for this many LLM attempts in the attempt number
    ATTEMPTS_PER_DELIVERY = 100

    def __init__(
        self,
        publish: PublishChunk,
        origin: Message,
        *,
        step: str,
        course_id: str | None = None,
        delivery: int = 0,
        min_interval: float = 0.1,
        max_chars: int = 400,
    ) -> None:
        self.publish = publish
        self.origin = origin
        self.step = step
        self.course_id = course_id
        # Under a work lease, the lease numbers the delivery: the broker's counters give
        # an identical copy of a message (a publisher's retry) the same number as the
        # original, whose cut text the client would then append to instead of dropping.
        leased = lease_taken_after_ms.get()
        self.base_attempt = (delivery if leased is None else leased) * self.ATTEMPTS_PER_DELIVERY
        self.attempt = self.base_attempt + 1
        self.index = 0
        self.min_interval = min_interval
        self.max_chars = max_chars
        self._buffer: list[str] = []
        self._size = 0
        self._last_flush: float | None = None  # None: nothing published in this attempt

    async def on_delta(self, text: str) -> None:
        """Buffer a delta; publish the first of an attempt at once, later ones when
        enough time or text has gathered."""
        self._buffer.append(text)
        self._size += len(text)
        last = self._last_flush
        if (
            last is None
            or self._size >= self.max_chars
            or time.monotonic() - last >= self.min_interval
        ):
            await self.flush()

    async def on_attempt(self, attempt: int) -> None:
        """A new LLM attempt starts: drop unsent text of the old one, number the new one."""
        self._buffer.clear()
        self._size = 0
        self._last_flush = None  # its first text goes out at once
        self.attempt = self.base_attempt + attempt
        self.index = 0

    async def flush(self) -> None:
        """Publish whatever is buffered."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        chunk = self.origin.follow(
            JobChunk,
            JobChunkPayload(
                step=self.step,
                text=text,
                attempt=self.attempt,
                index=self.index,
                course_id=self.course_id,
            ),
        )
        self.index += 1
        await self.publish(chunk)  # type: ignore[arg-type]
