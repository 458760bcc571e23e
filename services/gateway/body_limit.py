"""A cap on request bodies (a pure ASGI middleware, so streams pass through untouched).

A declared ``Content-Length`` over the limit is refused before a byte is read; any
other body (chunked, or whatever its header says) is counted as it arrives and
refused as soon as it goes over, so the gateway never holds more than the limit of
one request in memory. The body read is handed on to the application unchanged.

Before the 413 goes out, what the client is still sending of the refused body is read
and dropped (up to ``DRAIN_BYTES``, for up to ``DRAIN_S``): a server that closes a
connection with unread data resets it, and a client still writing its body then gets
the reset instead of the answer naming the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

Scope = dict[str, Any]
DRAIN_BYTES = 4 * 1024 * 1024
DRAIN_S = 2.0


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """413 with a JSON ``detail`` naming the limit for a body over ``max_bytes``."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, has_body = None, False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                has_body, length = True, value
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            await _drain(receive)
            await self._refuse(send)
            return
        try:
            body = await self._read(receive)
        except BodyTooLarge:
            await _drain(receive)
            await self._refuse(send)
            return
        if body is None:
            return  # the client went away before sending its body: nobody to answer
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())  # later messages (a disconnect) as they come

        await self.app(scope, replay, send)

    async def _read(self, receive: Any) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, send: Any) -> None:
        limit = self.max_bytes
        readable = f" ({limit // 1024} KiB)" if limit % 1024 == 0 else ""
        body = json.dumps(
            {
                "detail": f"request body too large: at most {limit} bytes{readable} "
                "are accepted (LECTERN_MAX_BODY_BYTES)"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Any) -> None:
    """Read and drop the rest of a refused body, within ``DRAIN_BYTES`` and ``DRAIN_S``."""
    left = DRAIN_BYTES
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_S):
            while left > 0:
                message = await receive()
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return
                left -= len(message.get("body", b""))
