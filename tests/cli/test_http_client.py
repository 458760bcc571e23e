"""The gateway client's SSE following: resume after a cut stream, timeouts, a gateway down."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.client.errors import EventTimeout, OverBudget, ServiceDown
from shared.client.http import LecternHTTP


def sse(seq: int, name: str) -> bytes:
    body = {"message_id": f"m{seq}", "job_id": "j", "schema": f"{name}.v1", "payload": {}}
    return f"id: {seq}\nevent: {name}\ndata: {json.dumps(body)}\n\n".encode()


class Stream(httpx.AsyncByteStream):
    """Sends ``chunks``, then either ends, hangs, or breaks like a dropped connection."""

    def __init__(self, chunks: list[bytes], then: str = "end") -> None:
        self.chunks, self.then = chunks, then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.then == "cut":
            raise httpx.ReadError("connection reset by peer")
        if self.then == "hang":
            await asyncio.Event().wait()


async def test_a_cut_stream_resumes_after_the_last_event() -> None:
    seen_headers: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/jobs/j":
            return httpx.Response(200, json={"job_id": "j", "status": "completed"})
        seen_headers.append(request.headers.get("Last-Event-ID"))
        assert request.headers["Authorization"] == "Bearer tok"
        if len(seen_headers) == 1:
            return httpx.Response(200, stream=Stream([sse(1, "job.chunk"), sse(2, "x")], "cut"))
        if len(seen_headers) == 2:  # the gateway restarts: the stream ends early
            return httpx.Response(200, stream=Stream([sse(3, "lesson.written")]))
        return httpx.Response(200, stream=Stream([b": ping\n\n", sse(4, "course.ready")]))

    statuses = iter(["running", "completed"])

    def with_status(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/jobs/j":
            return httpx.Response(200, json={"job_id": "j", "status": next(statuses)})
        return handler(request)

    async with LecternHTTP("http://gw", "tok", transport=httpx.MockTransport(with_status)) as c:
        events = [e async for e in c.events("j")]
    assert [(e.id, e.name) for e in events] == [
        ("1", "job.chunk"),
        ("2", "x"),
        ("3", "lesson.written"),
        ("4", "course.ready"),
    ]
    assert seen_headers == [None, "2", "3"]
    assert events[2].message_id == "m3" and events[2].job_id == "j"


async def test_resume_from_a_given_event_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/jobs/j":
            return httpx.Response(200, json={"status": "completed"})
        assert request.headers["Last-Event-ID"] == "41"
        return httpx.Response(200, stream=Stream([sse(42, "course.ready")]))

    async with LecternHTTP("http://gw", "t", transport=httpx.MockTransport(handler)) as c:
        assert [e.id async for e in c.events("j", last_event_id=41)] == ["42"]


async def test_idle_timeout_counts_events_not_pings() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Stream([sse(1, "x"), b": ping\n\n"], "hang"))

    async with LecternHTTP("http://gw", "t", transport=httpx.MockTransport(handler)) as c:
        got = []
        with pytest.raises(EventTimeout) as exc:
            async for event in c.events("j", idle_timeout=0.3):
                got.append(event.id)
    assert got == ["1"] and exc.value.idle is True


async def test_overall_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Stream([], "hang"))

    async with LecternHTTP("http://gw", "t", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(EventTimeout) as exc:
            _ = [e async for e in c.events("j", timeout=0.2, idle_timeout=60)]
    assert exc.value.idle is False


async def test_error_answers_carry_the_server_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, json={"detail": "token budget spent: your guest budget ..."})

    async with LecternHTTP("http://gw", "t", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(OverBudget, match="token budget spent"):
            await c.create_course("SQL", auto_finalize=True)


async def test_nothing_listening_is_service_down() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens there
    async with LecternHTTP(f"http://127.0.0.1:{port}") as c:
        with pytest.raises(ServiceDown) as exc:
            await c.guest()
    assert exc.value.url == f"http://127.0.0.1:{port}"
    assert f"http://127.0.0.1:{port}" in exc.value.message
