"""An event stream is sent after the layers below StreamHandoff have returned.

While a stream is open, the middleware, routers and endpoint wrappers its request went
through must not stay suspended under it: with 10,000 streams their frames, closures
and contexts were most of what the garbage collector walked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.gateway.sse import PING, STREAM_SLOT, EventStreamResponse, StreamHandoff


class _Watcher:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Layer:
    """A middleware between the handoff and the endpoint: records when it returns."""

    def __init__(self, app: Any, *, fail_after: bool = False) -> None:
        self.app = app
        self.returned = False
        self.fail_after = fail_after

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        self.returned = True
        if self.fail_after:
            raise RuntimeError("a layer failed after the endpoint answered")


def _client() -> tuple[Any, Any, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return receive, send, sent


def _scope(path: str = "/v1/jobs/j-1/events") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "headers": []}


async def test_the_stream_runs_after_the_layers_below_have_returned() -> None:
    seen_while_streaming: list[bool] = []
    closed: list[bool] = []

    async def stream() -> AsyncIterator[None]:
        seen_while_streaming.append(layer.returned)
        yield None  # a keep-alive ping

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        response = EventStreamResponse(stream(), _Watcher(), on_close=lambda: closed.append(True))
        await response(scope, receive, send)

    layer = _Layer(endpoint)
    receive, send, sent = _client()
    scope = _scope()
    scope["fastapi_inner_astack"] = object()  # FastAPI's, closed once the endpoint answered
    await StreamHandoff(layer)(scope, receive, send)

    assert seen_while_streaming == [True]
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 2
    assert sent[1]["body"] == PING and sent[-1]["more_body"] is False
    assert closed == [True]
    assert "fastapi_inner_astack" not in scope and len(scope[STREAM_SLOT]) == 1


async def test_a_request_that_fails_after_the_endpoint_lets_its_stream_go() -> None:
    closed: list[bool] = []
    started: list[bool] = []

    async def stream() -> AsyncIterator[None]:
        started.append(True)
        yield None

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        response = EventStreamResponse(stream(), _Watcher(), on_close=lambda: closed.append(True))
        await response(scope, receive, send)

    receive, send, sent = _client()
    with pytest.raises(RuntimeError, match="after the endpoint answered"):
        await StreamHandoff(_Layer(endpoint, fail_after=True))(_scope(), receive, send)
    assert closed == [True]  # the watcher is given back
    assert started == [] and sent == []


async def test_other_requests_and_streams_without_the_handoff_run_in_place() -> None:
    calls: list[str] = []

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    receive, send, sent = _client()
    scope = _scope("/v1/courses")
    await StreamHandoff(endpoint)(scope, receive, send)
    assert calls == ["/v1/courses"] and scope[STREAM_SLOT] == []
    assert sent[0]["status"] == 204

    async def stream() -> AsyncIterator[None]:
        yield None

    closed: list[bool] = []
    receive, send, sent = _client()
    response = EventStreamResponse(stream(), _Watcher(), on_close=lambda: closed.append(True))
    await response(_scope(), receive, send)  # no StreamHandoff above: sent at once
    assert sent[1]["body"] == PING and closed == [True]


def test_the_gateway_hands_streams_off_just_inside_its_http_metrics() -> None:
    """Outside the handoff, a stream's status and duration are still counted; inside
    it, every layer that would otherwise stay suspended under the stream."""
    from services.gateway.app import app
    from services.gateway.http_metrics import HttpMetrics

    assert [m.cls for m in app.user_middleware][:2] == [HttpMetrics, StreamHandoff]
