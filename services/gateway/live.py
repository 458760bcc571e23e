"""Live fan-out to open SSE streams, and the checks that make up for lost fan-out.

Each replica's live queue hands stored events to :class:`EventHub`, which puts them
in the :class:`Watcher` of every open stream of that job. A stream sends its
watcher's events in ``seq`` order and re-reads the log when one is missing: a gap
in the sequence, a watcher that overflowed, or a hub check that found the job
further on than the stream. Fan-out messages are lost when this replica's
exclusive live queue goes away with its connection; so when the connection comes
back, and on a long jittered interval as a safety net, the hub compares every
watched job's last stored ``seq`` with what its streams have sent, in one query for
all of them, and wakes only the streams that are behind. An idle stream costs no
query and no timer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from typing import Protocol

from sse_starlette.sse import AppStatus

from services.gateway.streams import StoredEvent

log = logging.getLogger("lectern.gateway.live")
MAX_BUFFERED = 1_000  # live events a slow stream may hold; beyond, it re-reads the log
CHECK_EVERY_S = 60.0  # the safety-net check, jittered by ± CHECK_JITTER
CHECK_JITTER = 0.25
RETRY_S = 5.0  # after a failed check
CHECK_BATCH = 5_000  # job ids per query of a check
LOG_PAGE = 1_000  # events per read of the log


class EventSource(Protocol):
    """What streams read from the event log (:class:`~services.gateway.streams.EventLog`)."""

    async def since(self, job_id: str, after_seq: int, limit: int = LOG_PAGE) -> list[StoredEvent]:
        """The job's events with seq > ``after_seq``, in order."""
        ...

    async def last_seqs(self, job_ids: list[str]) -> dict[str, int]:
        """The last stored seq of each of ``job_ids`` that exists."""
        ...


class Watcher:
    """One open stream's inbox: its job's live events, and whether to re-read the log."""

    __slots__ = ("_waiter", "closed", "events", "idle_since", "job_id", "last", "stale")

    def __init__(self, job_id: str, last: int) -> None:
        self.job_id = job_id
        self.last = last  # the highest seq the stream has sent
        self.events: deque[StoredEvent] = deque()
        self.stale = False  # the log holds events this stream has not been given
        self.closed = False  # the client went away, or the server is shutting down
        self.idle_since = 0.0  # loop time when the stream last began to wait
        self._waiter: asyncio.Future[bool] | None = None

    def push(self, event: StoredEvent) -> None:
        if event.seq <= self.last:
            return
        if len(self.events) >= MAX_BUFFERED:
            self.events.clear()  # this far behind, the log is cheaper than the buffer
            self.stale = True
        else:
            self.events.append(event)
        self._wake()

    def mark_stale(self) -> None:
        self.stale = True
        self._wake()

    def close(self) -> None:
        """End the stream at its next step (its client is gone, or the server stops)."""
        self.closed = True
        self._wake()

    def _wake(self, woken: bool = True) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(woken)

    async def wait(self) -> bool:
        """Until there is an event to send, the log is to be read or the stream is
        closed; False when woken for a keep-alive instead (:meth:`EventHub.keep_alive`)."""
        if self.events or self.stale or self.closed:
            return True
        loop = asyncio.get_running_loop()
        self.idle_since = loop.time()
        self._waiter = loop.create_future()
        try:
            return await self._waiter
        finally:
            self._waiter = None

    @property
    def waiting(self) -> bool:
        return self._waiter is not None and not self._waiter.done()


class EventHub:
    """In-process fan-out from this replica's live queue to open SSE streams."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Watcher]] = defaultdict(set)
        self._check_now = asyncio.Event()
        self.closing = False

    def watch(self, job_id: str, after_seq: int) -> Watcher:
        watcher = Watcher(job_id, after_seq)
        if self.closing:
            watcher.close()  # a stream opened during shutdown ends at once
        self._watchers[job_id].add(watcher)
        return watcher

    def close_all(self) -> int:
        """End every open stream (the server is shutting down); how many there were."""
        self.closing = True
        watchers = [w for ws in self._watchers.values() for w in ws]
        for watcher in watchers:
            watcher.close()
        return len(watchers)

    def ping_idle(self, idle_s: float) -> int:
        """Wake the streams that have waited ``idle_s`` or longer for a keep-alive."""
        since = asyncio.get_running_loop().time() - idle_s
        idle = [
            w for ws in self._watchers.values() for w in ws if w.waiting and w.idle_since <= since
        ]
        for watcher in idle:
            watcher._wake(False)
        return len(idle)

    async def keep_alive(self, idle_s: float, every_s: float = 1.0) -> None:
        """A keep-alive for every stream idle ``idle_s``, checked every ``every_s``: one
        timer for all streams, not one per stream and event."""
        while True:
            await asyncio.sleep(every_s)
            self.ping_idle(idle_s)

    async def close_on_server_exit(self, poll_s: float = 0.5) -> None:
        """Close every stream once the server is told to exit, so that it can drain:
        uvicorn waits for open responses before it shuts down. sse-starlette's
        ``AppStatus`` is set by its hook on uvicorn's exit handler."""
        while not (AppStatus.should_exit or self.closing):  # noqa: ASYNC110 (a flag set in a signal handler)
            await asyncio.sleep(poll_s)
        closed = self.close_all()
        if closed:
            log.info("server exiting: closed %d open streams", closed)

    def unwatch(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.job_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.job_id]

    def deliver(self, event: StoredEvent) -> None:
        for watcher in self._watchers.get(event.job_id, ()):
            watcher.push(event)

    @property
    def open_streams(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def check_soon(self, *_: object) -> None:
        """Ask :meth:`keep_checking` for a check now (a live-queue reconnect callback)."""
        self._check_now.set()

    async def check(self, source: EventSource) -> int:
        """Wake the streams whose job's log is ahead of them; how many were woken.

        One query per ``CHECK_BATCH`` watched jobs, whatever the number of streams.
        """
        job_ids = list(self._watchers)
        woken = 0
        for start in range(0, len(job_ids), CHECK_BATCH):
            last = await source.last_seqs(job_ids[start : start + CHECK_BATCH])
            for job_id, seq in last.items():
                for watcher in self._watchers.get(job_id, ()):
                    # what is waiting in the buffer is not behind
                    sent = watcher.events[-1].seq if watcher.events else watcher.last
                    if seq > sent:
                        watcher.mark_stale()
                        woken += 1
        return woken

    async def keep_checking(
        self, source: EventSource, every: float = CHECK_EVERY_S, jitter: float = CHECK_JITTER
    ) -> None:
        """Check when asked (the live queue reconnected) and on a jittered interval; a
        failed check (the database away too) is tried again after ``RETRY_S``."""
        failed = False
        while True:
            timeout = RETRY_S if failed else every * random.uniform(1 - jitter, 1 + jitter)
            try:
                await asyncio.wait_for(self._check_now.wait(), timeout)
            except TimeoutError:
                pass
            self._check_now.clear()
            try:
                woken = await self.check(source)
            except Exception as exc:
                failed = True
                log.warning("stream check failed (%s); trying again in %.0f s", exc, RETRY_S)
                continue
            failed = False
            if woken:
                log.info("stream check: %d streams behind the log re-read it", woken)


async def job_stream(
    source: EventSource,
    hub: EventHub,
    watcher: Watcher,
    final_events: list[str],
    *,
    stored_up_to: int | None = None,
) -> AsyncIterator[StoredEvent | None]:
    """The job's events after ``watcher.last``: stored ones, then live, until a final one
    or until the watcher is closed. ``None`` when the hub asks for a keep-alive.

    The watcher is registered before the log is read, so nothing committed in between
    is missed; live events already sent are skipped and a gap is filled from the log.
    ``stored_up_to``, the job's last seq read after the watcher was registered, spares
    the first read of the log when there is nothing in it to send. Unwatches at the end.
    """
    job_id = watcher.job_id
    read_log = stored_up_to is None or stored_up_to > watcher.last
    try:
        while not watcher.closed:
            if read_log:
                watcher.stale = False
                backlog = await source.since(job_id, watcher.last, LOG_PAGE)
                for event in backlog:
                    watcher.last = event.seq
                    yield event
                    if event.event in final_events:
                        return
                read_log = len(backlog) >= LOG_PAGE
                if read_log:
                    continue
            if not await watcher.wait():
                yield None
                continue
            if watcher.closed:
                return
            if watcher.stale:
                read_log = True
                continue
            event = watcher.events.popleft()
            if event.seq <= watcher.last:
                continue
            if event.seq > watcher.last + 1:
                read_log = True  # a gap: fill it from the log
                continue
            watcher.last = event.seq
            yield event
            if event.event in final_events:
                return
    finally:
        hub.unwatch(watcher)
