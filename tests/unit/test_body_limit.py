"""The body cap refuses with a 413 naming the limit, after reading what the client still
sends of the refused body (closing on unread data would reset the connection)."""

from __future__ import annotations

from typing import Any

from services.gateway.body_limit import DRAIN_BYTES, BodySizeLimit


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - refused
    raise AssertionError("a refused body must not reach the application")


def _client(pieces: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[Any, Any, list[int]]:
    read: list[int] = []

    async def receive() -> dict[str, Any]:
        i = len(read)
        read.append(i)
        return {"type": "http.request", "body": pieces[i], "more_body": i < len(pieces) - 1}

    scope = {"type": "http", "headers": headers}
    return scope, receive, read


async def _refused(scope: Any, receive: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await BodySizeLimit(_app, max_bytes=100)(scope, receive, send)
    return sent


async def test_a_chunked_body_over_the_limit_is_read_to_its_end_then_refused() -> None:
    scope, receive, read = _client([b"x" * 60] * 10, [(b"transfer-encoding", b"chunked")])
    sent = await _refused(scope, receive)
    assert sent[0]["status"] == 413 and b"at most 100 bytes" in sent[1]["body"]
    assert len(read) == 10  # every piece the client sent was taken off the connection


async def test_a_declared_length_over_the_limit_is_drained_within_a_bound() -> None:
    piece = b"y" * (1024 * 1024)
    pieces = [piece] * (DRAIN_BYTES // len(piece) + 10)
    scope, receive, read = _client(pieces, [(b"content-length", str(10**9).encode())])
    sent = await _refused(scope, receive)
    assert sent[0]["status"] == 413
    # no more than DRAIN_BYTES are read for a body that will not be taken
    assert len(read) == DRAIN_BYTES // len(piece)
