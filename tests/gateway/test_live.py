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


async def test_an_idle_stream_yields_a_keep_alive_and_then_its_events() -> None:
    log, hub = FakeLog(), EventHub()
    stream, busy = open_stream(log, hub, "j"), open_stream(log, hub, "busy")
    keeping = asyncio.ensure_future(hub.keep_alive(idle_s=0.2, every_s=0.02))
    pinged = asyncio.ensure_future(anext(stream))
    busy_next = asyncio.ensure_future(anext(busy))
    for n in range(10):  # "busy" gets an event every 40 ms: never idle for 200 ms
        await asyncio.sleep(0.04)
        assert n > 0 or not pinged.done()
        hub.deliver(log.store("busy"))
        assert await asyncio.wait_for(busy_next, 1) is not None  # an event, never a ping
        busy_next = asyncio.ensure_future(anext(busy))
    assert pinged.result() is None  # "j" idle for 200 ms: a keep-alive
    keeping.cancel()
    busy_next.cancel()
    hub.deliver(log.store("j"))
    assert await next_seq(stream) == 1
    hub.deliver(log.store("j", "course.ready"))
    assert await next_seq(stream) == 2
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert hub.open_streams == 0


async def test_closing_a_watcher_ends_its_stream_and_shutdown_ends_them_all() -> None:
    log, hub = FakeLog(), EventHub()
    one, two, other = (open_stream(log, hub, j) for j in ("a", "a", "b"))
    waiting = [asyncio.ensure_future(anext(s)) for s in (one, two, other)]
    await asyncio.sleep(0)
    assert hub.open_streams == 3
    next(iter(hub._watchers["b"])).close()  # b's client went away
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting[2], 1)
    assert hub.open_streams == 2
    assert hub.close_all() == 2  # the server shuts down
    for w in waiting[:2]:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(w, 1)
    assert hub.open_streams == 0
    late = open_stream(log, hub, "a")  # opened while shutting down: ends at once
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(late), 1)


async def test_streams_are_closed_when_the_server_is_told_to_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log, hub = FakeLog(), EventHub()
    stream = open_stream(log, hub, "j")
    waiting = asyncio.ensure_future(anext(stream))
    watching = asyncio.ensure_future(hub.close_on_server_exit(poll_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    monkeypatch.setattr(live.AppStatus, "should_exit", True)  # what uvicorn's SIGTERM sets
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 1)
    await asyncio.wait_for(watching, 1)
    assert hub.open_streams == 0


class AsgiClient:
    """Runs an ASGI response as a server would: what it sent, and a disconnect on demand."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, object]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, object]) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent)  # type: ignore[misc]


def stream_response(log: FakeLog, hub: EventHub, job_id: str) -> tuple[object, list[bool]]:
    from services.gateway.sse import EventStreamResponse

    watcher = hub.watch(job_id, 0)
    stream = job_stream(log, hub, watcher, FINAL, stored_up_to=0)
    closed: list[bool] = []

    def on_close() -> None:  # as the route's: a stream that never started is let go too
        closed.append(True)
        hub.unwatch(watcher)

    return EventStreamResponse(stream, watcher, on_close=on_close), closed


async def test_the_response_sends_frames_and_pings_and_ends_after_the_final_event() -> None:
    log, hub, client = FakeLog(), EventHub(), AsgiClient()
    response, closed = stream_response(log, hub, "j")
    running = asyncio.ensure_future(
        response({"type": "http", "method": "GET"}, client.receive, client.send)  # type: ignore[operator]
    )
    await asyncio.sleep(0.02)
    assert hub.ping_idle(0) == 1
    hub.deliver(log.store("j"))
    hub.deliver(log.store("j", "course.ready"))
    await asyncio.wait_for(running, 1)
    start = client.sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = dict(start["headers"])  # type: ignore[arg-type]
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-accel-buffering"] == b"no"
    body = client.body()
    assert body.startswith(b": ping\r\n\r\n")
    assert body.endswith(log.events["j"][0].sse + log.events["j"][1].sse)
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert closed == [True] and hub.open_streams == 0


async def test_a_client_that_goes_away_ends_its_response_and_frees_its_watcher() -> None:
    log, hub, client = FakeLog(), EventHub(), AsgiClient()
    response, closed = stream_response(log, hub, "j")
    running = asyncio.ensure_future(
        response({"type": "http", "method": "GET"}, client.receive, client.send)  # type: ignore[operator]
    )
    hub.deliver(log.store("j"))
    await asyncio.sleep(0.02)
    assert hub.open_streams == 1 and not running.done()
    client.gone.set()
    await asyncio.wait_for(running, 1)
    assert closed == [True] and hub.open_streams == 0
    assert client.body() == log.events["j"][0].sse


async def test_head_gets_the_headers_and_no_stream() -> None:
    log, hub, client = FakeLog(), EventHub(), AsgiClient()
    response, closed = stream_response(log, hub, "j")
    await asyncio.wait_for(
        response({"type": "http", "method": "HEAD"}, client.receive, client.send),  # type: ignore[operator]
        1,
    )
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.body() == b"" and closed == [True] and hub.open_streams == 0
