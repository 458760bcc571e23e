"""The SSE response of a job's stream (``GET /v1/jobs/{job_id}/events``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.live import Watcher
from services.gateway.streams import StoredEvent

STREAM_SLOT = "lectern.stream_slot"  # the scope key where a stream waits for StreamHandoff
# what FastAPI leaves in the scope of a request it has answered: exit stacks already closed
_ANSWERED = ("fastapi_astack", "fastapi_inner_astack", "fastapi_function_astack")
PING_S = 15.0  # a comment line after this long without an event keeps proxies from closing
PING = b": ping\r\n\r\n"


class EventStreamResponse(Response):
    """Server-Sent Events from a job's stream, sent by the request's own task.

    One more task per stream waits for the client to go away and closes its watcher;
    keep-alive pings come from one hub-wide check (:meth:`EventHub.keep_alive`) and
    server shutdown closes every watcher (:meth:`EventHub.close_on_server_exit`).
    sse-starlette's response ran four tasks per stream in an anyio task group, with a
    cancel scope around every send: about 170 objects for the garbage collector to walk
    per open stream, and gen-2 collections of over a second with 10,000 streams open.
    Each event's frame is encoded once for every stream that sends it
    (:attr:`StoredEvent.sse`).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: AsyncIterator[StoredEvent | None],
        watcher: Watcher,
        *,
        on_close: Callable[[], None],
    ) -> None:
        self.stream = stream
        self.watcher = watcher
        self.on_close = on_close  # runs however the response ends, even before it starts
        self.status_code = 200
        self.background = None
        self.init_headers(
            {"Cache-Control": "no-store", "Connection": "keep-alive", "X-Accel-Buffering": "no"}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slot = scope.get(STREAM_SLOT)
        if slot is not None and not slot:
            slot.append(self)  # StreamHandoff runs it once the routing has returned
            return
        await self.run(scope, receive, send)

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream until it ends or the client goes away."""
        gone: asyncio.Task[None] | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method") != "HEAD":  # HEAD: the headers alone
                gone = asyncio.ensure_future(self._until_disconnect(receive))
                async for event in self.stream:
                    frame = PING if event is None else event.sse
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if gone is not None:
                gone.cancel()
            await self.discard()

    async def discard(self) -> None:
        """Let go of the stream: sent to its end, or not to be sent (the request failed)."""
        await self.stream.aclose()  # type: ignore[attr-defined]
        self.on_close()

    async def _until_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.watcher.close()


class StreamHandoff:
    """ASGI middleware: runs an event stream after the layers below it have returned.

    A response is awaited inside every layer of middleware and routing its request went
    through (about twenty: body limits, exception handlers, FastAPI's exit stacks, the
    routers, the endpoint's wrappers), and each keeps its coroutine, closures and
    context alive while the stream stays open. With 10,000 streams that was most of
    the 155 objects per stream the garbage collector walked in every full collection.
    :class:`EventStreamResponse` parks itself in the scope instead, the layers below
    finish (validation, authentication, the job's ownership all done), and this
    middleware, just inside the HTTP metrics and tracing, sends the stream.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot: list[EventStreamResponse] = []
        scope[STREAM_SLOT] = slot
        try:
            await self.app(scope, receive, send)
        except BaseException:
            for parked in slot:
                await parked.discard()
            raise
        if slot:
            for key in _ANSWERED:
                scope.pop(key, None)
            await slot[0].run(scope, receive, send)
