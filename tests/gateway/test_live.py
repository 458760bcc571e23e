"""Open SSE streams: live events, gaps and lost fan-out filled from the log, no idle polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from services.gateway import live
from services.gateway.live import MAX_BUFFERED, EventHub, job_stream
from services.gateway.streams import StoredEvent

FINAL = ["course.ready", "job.failed"]


class FakeLog:
    """The event log in memory, counting the reads streams make."""

    def __init__(self) -> None:
        self.events: dict[str, list[StoredEvent]] = defaultdict(list)
        self.reads = 0
        self.checks = 0

    def store(self, job_id: str, event: str = "job.chunk") -> StoredEvent:
        stored = StoredEvent(job_id, len(self.events[job_id]) + 1, event, {"n": 1})
        self.events[job_id].append(stored)
        return stored

    async def since(self, job_id: str, after_seq: int, limit: int = 1000) -> list[StoredEvent]:
        self.reads += 1
        return [e for e in self.events[job_id] if e.seq > after_seq][:limit]

    async def last_seqs(self, job_ids: list[str]) -> dict[str, int]:
        self.checks += 1
        return {j: len(self.events[j]) for j in job_ids if self.events.get(j)}


def open_stream(
    log: FakeLog, hub: EventHub, job_id: str, after: int = 0
) -> AsyncIterator[StoredEvent]:
    """A stream as the route opens it: watched first, then the job's last seq read."""
    watcher = hub.watch(job_id, after)
    stored_up_to = len(log.events[job_id])
    return job_stream(log, hub, watcher, FINAL, stored_up_to=stored_up_to)


async def next_seq(stream: AsyncIterator[StoredEvent], timeout: float = 2.0) -> int:
    return (await asyncio.wait_for(anext(stream), timeout)).seq


async def test_stored_events_then_live_ones_until_the_final_one() -> None:
    log, hub = FakeLog(), EventHub()
    log.store("j")
    log.store("j")
    stream = open_stream(log, hub, "j")
    assert [await next_seq(stream), await next_seq(stream)] == [1, 2]
    hub.deliver(log.store("j"))
    hub.deliver(log.store("j", "course.ready"))
    assert [await next_seq(stream), await next_seq(stream)] == [3, 4]
    assert [e async for e in stream] == []  # ended after the final event
    assert hub.open_streams == 0
    assert log.reads == 1


async def test_an_idle_stream_reads_nothing_and_resumes_after_last_event_id() -> None:
    log, hub = FakeLog(), EventHub()
    log.store("j")
    log.store("j")
    stream = open_stream(log, hub, "j", after=2)  # Last-Event-ID: 2, nothing newer stored
    waiting = asyncio.ensure_future(next_seq(stream))
    await asyncio.sleep(0.2)
    assert not waiting.done() and log.reads == 0  # no query, however long it stays idle
    hub.deliver(log.store("j"))
    assert await waiting == 3
    assert log.reads == 0


async def test_a_gap_in_live_events_is_filled_from_the_log() -> None:
    log, hub = FakeLog(), EventHub()
    stream = open_stream(log, hub, "j")
    first = asyncio.ensure_future(next_seq(stream))
    await asyncio.sleep(0)
    log.store("j")  # its fan-out message is lost
    hub.deliver(log.store("j"))
    assert await first == 1
    assert await next_seq(stream) == 2
    assert log.reads == 1


async def test_fan_out_lost_on_a_reconnect_is_recovered_by_one_check() -> None:
    log, hub = FakeLog(), EventHub()
    checker = asyncio.create_task(hub.keep_checking(log, every=3600))
    try:
        behind = open_stream(log, hub, "behind")
        current = [open_stream(log, hub, f"idle-{i}") for i in range(50)]
        waiting = [asyncio.ensure_future(next_seq(s, 5)) for s in [behind, *current]]
        await asyncio.sleep(0.05)
        log.store("behind")  # stored while this replica's live queue was gone
        await asyncio.sleep(0.05)
        assert not waiting[0].done()
        hub.check_soon()  # what the broker connection calls once it is back
        assert await waiting[0] == 1
        assert log.checks == 1  # one query for all 51 streams
        assert log.reads == 1  # only the stream that was behind read the log
        assert not any(w.done() for w in waiting[1:])
    finally:
        checker.cancel()
        for w in waiting:
            w.cancel()


async def missed_event_arrives(log: FakeLog, hub: EventHub, every: float, nudge: bool) -> None:
    """An event stored but never fanned out reaches its open stream, with the hub
    checking every ``every`` s (and asked to check at once when ``nudge``)."""
    checker = asyncio.create_task(hub.keep_checking(log, every=every))
    try:
        stream = open_stream(log, hub, "j")
        waiting = asyncio.ensure_future(next_seq(stream))
        await asyncio.sleep(0)
        log.store("j")  # never fanned out
        if nudge:
            hub.check_soon()
        assert await waiting == 1
    finally:
        checker.cancel()


async def test_the_jittered_safety_check_recovers_without_a_reconnect() -> None:
    await missed_event_arrives(FakeLog(), EventHub(), every=0.1, nudge=False)


async def test_a_check_does_not_wake_a_stream_whose_events_are_on_their_way() -> None:
    log, hub = FakeLog(), EventHub()
    watcher = hub.watch("j", 0)
    watcher.push(log.store("j"))  # delivered, not yet sent
    assert await hub.check(log) == 0
    assert not watcher.stale


async def test_a_stream_too_far_behind_drops_its_buffer_and_reads_the_log() -> None:
    log, hub = FakeLog(), EventHub()
    stream = open_stream(log, hub, "j")
    for _ in range(MAX_BUFFERED + 5):
        hub.deliver(log.store("j"))
    seqs = [await next_seq(stream) for _ in range(MAX_BUFFERED + 5)]
    assert seqs == list(range(1, MAX_BUFFERED + 6))
    assert log.reads == 2  # one page of the log, then the rest


async def test_a_stream_closed_early_lets_go_of_its_watcher() -> None:
    log, hub = FakeLog(), EventHub()
    stream = open_stream(log, hub, "j")
    waiting = asyncio.ensure_future(next_seq(stream))
    await asyncio.sleep(0)
    assert hub.open_streams == 1
    waiting.cancel()  # the client went away
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert hub.open_streams == 0


async def test_a_check_that_fails_is_tried_again_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    class FlakyLog(FakeLog):
        async def last_seqs(self, job_ids: list[str]) -> dict[str, int]:
            if self.checks == 0:
                self.checks += 1
                raise ConnectionRefusedError("the database restarts too")
            return await super().last_seqs(job_ids)

    monkeypatch.setattr(live, "RETRY_S", 0.05)
    log = FlakyLog()
    await missed_event_arrives(log, EventHub(), every=3600, nudge=True)
    assert log.checks == 2


def test_an_event_is_encoded_once_for_every_stream_that_sends_it() -> None:
    event = StoredEvent("job-1", 7, "job.chunk", {"text": "a\nb", "n": 1})
    frame = event.sse
    # what EventSourceResponse made of {"id", "event", "data": json.dumps(body)}
    assert frame == b'id: 7\r\nevent: job.chunk\r\ndata: {"text": "a\\nb", "n": 1}\r\n\r\n'
    assert event.sse is frame

    hub = EventHub()
    first, second = hub.watch("job-1", 6), hub.watch("job-1", 6)
    hub.deliver(event)
    assert first.events[0].sse is second.events[0].sse is frame


async def test_a_stream_without_a_send_timeout_sends_directly_and_one_with_it_times_out() -> None:
    from sse_starlette.sse import SendTimeoutError

    from services.gateway.routes.jobs import WatchingResponse

    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    response = WatchingResponse(nothing(), on_close=lambda: None)
    await response._send_with_timeout(send, {"type": "x"})
    assert sent == [{"type": "x"}]

    async def stuck(message: dict[str, object]) -> None:
        await asyncio.sleep(10)

    slow = WatchingResponse(nothing(), on_close=lambda: None, send_timeout=0.05)
    with pytest.raises(SendTimeoutError):
        await slow._send_with_timeout(stuck, {"type": "x"})
