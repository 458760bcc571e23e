"""The ``openai/*`` route's HTTP: chat completions streamed from an OpenAI-compatible server.

The request goes out on aiohttp (its HTTP parser is C) and the answer's event stream is
read here, without the OpenAI SDK: the SDK's request path (pydantic options, httpx,
anyio) cost a worker about 1.5 ms of CPU per call and 1 ms more before the request
left, on the way to the model, and httpx read each chunk through several layers of
Python. One :class:`ChatHTTP` holds a connection pool per event loop.

Errors are this module's own: :class:`ProviderError` carries the HTTP status and
headers (``Retry-After``) of a refused request, or none for an error the server sent
inside the stream; :class:`ProviderConnectionError` (a :class:`ConnectionError`) is a
connection refused, dropped or cut mid-body. The LLM client classifies them with the
SDK's and litellm's (:func:`shared.llm.client.classify_error`).
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from shared.settings import LecternSettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ERROR_BODY_MAX = 64 * 1024  # bytes of a refusal's body kept for its message


class ProviderError(Exception):
    """An OpenAI-compatible server refused a request (``status_code``) or sent an error
    event inside its stream (no status)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: Any = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers
        self.body = body


class ProviderConnectionError(ProviderError, ConnectionError):
    """The connection to the server failed, dropped, or the answer's body was cut."""


def base_url(settings: LecternSettings) -> str:
    """``LLM_API_BASE``, else ``OPENAI_API_BASE`` or ``OPENAI_BASE_URL``, else OpenAI's."""
    return (
        settings.llm_api_base
        or os.environ.get("OPENAI_API_BASE")
        or os.environ.get("OPENAI_BASE_URL")
        or DEFAULT_BASE_URL
    ).rstrip("/")


def request_headers(settings: LecternSettings) -> dict[str, str]:
    """``LLM_API_KEY`` (else ``OPENAI_API_KEY``; a local server may need none) as a bearer
    token, and OpenAI's organisation and project when set, as the SDK sends them."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    key = settings.llm_api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    optional = (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project"))
    for env, header in optional:
        if os.environ.get(env):
            headers[header] = os.environ[env]
    return headers


def load() -> Any:
    """aiohttp (imported at warm-up, off the event loop, not inside the first call)."""
    import aiohttp

    return aiohttp


def _ssl_context() -> ssl.SSLContext:
    """Certificates as httpx (and so the SDK) would verify them: certifi's, when there."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class ChatHTTP:
    """Streamed chat completions from one OpenAI-compatible server, a pool per event loop.

    No timeouts of its own (the LLM client bounds the request and each wait for a
    chunk) and no cap on connections below the calls in flight
    (``AIOHTTP_CONNECTOR_LIMIT``, default 10,000: a worker's calls are bounded by the
    messages it holds). Proxies from the environment (``HTTPS_PROXY``) are honoured.
    """

    def __init__(self, settings: LecternSettings) -> None:
        self.url = base_url(settings) + "/chat/completions"
        self.headers = request_headers(settings)
        self.limit = int(os.environ.get("AIOHTTP_CONNECTOR_LIMIT") or 10_000)
        self._session: tuple[asyncio.AbstractEventLoop, Any] | None = None

    async def aclose(self) -> None:
        """Close the pool of the running event loop (one of another loop is left to it)."""
        if self._session is not None and self._session[0] is asyncio.get_running_loop():
            await self._session[1].close()
        self._session = None

    def _session_here(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session[0] is not loop or self._session[1].closed:
            aiohttp = load()
            connector = aiohttp.TCPConnector(limit=self.limit, ssl=_ssl_context())
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=True,
            )
            self._session = (loop, session)
        return self._session[1]

    async def open(
        self, request: dict[str, Any]
    ) -> tuple[Callable[[], Awaitable[None]], AsyncIterator[dict[str, Any]]]:
        """POST ``request`` (stream on); how to close the answer, and its chunks' JSON.

        Raises:
            ProviderError: the server answered with an error status.
            ProviderConnectionError: the request could not be sent or answered.
        """
        aiohttp = load()
        try:
            response = await self._session_here().post(
                self.url, data=json.dumps(request).encode(), headers=self.headers
            )
        except aiohttp.ClientError as exc:
            raise ProviderConnectionError(f"{self.url}: {exc or type(exc).__name__}") from exc
        if response.status >= 400:
            try:
                body = await response.content.read(ERROR_BODY_MAX)
            except aiohttp.ClientError:
                body = b""
            finally:
                response.close()
            raise _refusal(response.status, response.reason, response.headers, body)

        async def close() -> None:
            # a body read to its end hands the connection back; one left mid-way
            # (cancelled, cut, timed out) cannot be reused
            if response.content.at_eof():
                response.release()
            else:
                response.close()

        return close, sse_chunks(_blocks(response, aiohttp))


def _refusal(status: int, reason: str | None, headers: Any, body: bytes) -> ProviderError:
    """The error for a refused request, with the server's own message when it sent one."""
    detail: Any = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        detail = error.get("message", error) if isinstance(error, dict) else error
    text = f"HTTP {status} {reason or ''}".rstrip()
    return ProviderError(
        f"{text}: {detail}" if detail else text, status_code=status, headers=headers, body=parsed
    )


async def _blocks(response: Any, aiohttp: Any) -> AsyncIterator[bytes]:
    """The body's bytes as they arrive; a broken body is a :class:`ProviderConnectionError`."""
    try:
        async for block in response.content.iter_any():
            yield block
    except aiohttp.ClientError as exc:
        raise ProviderConnectionError(f"the answer's stream broke: {exc}") from exc


async def sse_chunks(blocks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an OpenAI-style event stream (``data: {...}`` events until
    ``data: [DONE]``), from its bytes in any framing.

    Raises:
        ProviderError: for an error the server sends as an event (no status).
    """
    pending = b""
    data: list[bytes] = []
    async for block in blocks:
        *lines, pending = (pending + block).split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if line:
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                continue  # event:, id:, retry: and comments carry nothing here
            if data:
                chunk = _event(b"\n".join(data))
                data.clear()
                if chunk is None:
                    return
                yield chunk
    if pending.startswith(b"data:"):  # the last event, without its blank line
        data.append(pending[6:] if pending[5:6] == b" " else pending[5:])
    if data and (chunk := _event(b"\n".join(data))) is not None:
        yield chunk


def _event(payload: bytes) -> dict[str, Any] | None:
    """An event's JSON object; None at ``[DONE]``; raises the server's error event."""
    if payload.startswith(b"[DONE]"):
        return None
    chunk = json.loads(payload)
    if not isinstance(chunk, dict):
        return {}
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise ProviderError(message or "error in the stream", body=error)
    return chunk
