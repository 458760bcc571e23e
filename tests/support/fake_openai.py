"""A tiny OpenAI-compatible chat completions server for provider-path tests.

It runs uvicorn in a background thread on ``127.0.0.1`` with a free port, so
tests exercise litellm's real HTTP client, SSE parsing and error mapping.
Behaviour is set per test by mutating :class:`FakeBehaviour` (the server lives
in the same process, so no control endpoint is needed):

- ``rate_limit_times``: answer 429 with ``Retry-After`` that many times first;
- ``fail_models``: models that always answer 500;
- ``reply``: the text streamed back (``invalid_json`` replaces it with broken JSON);
- ``cut_clean_times``: that many streams first end cleanly half-way, with no finish
  reason and no ``[DONE]`` (a connection closed mid-answer, as a proxy may).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_REPLY = "Hello from the fake provider, streamed in a few small pieces."


@dataclass
class FakeBehaviour:
    """What the fake server does; tests change the fields between calls."""

    reply: str = DEFAULT_REPLY
    invalid_json: bool = False
    rate_limit_times: int = 0
    retry_after: str = "1"
    fail_models: set[str] = field(default_factory=set)
    cut_clean_times: int = 0
    fail_status: list[int] = field(default_factory=list)  # the next answers' error statuses
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)

    def reset(self) -> None:
        """Back to a healthy server with an empty request log."""
        self.reply = DEFAULT_REPLY
        self.invalid_json = False
        self.rate_limit_times = 0
        self.retry_after = "1"
        self.fail_models = set()
        self.cut_clean_times = 0
        self.fail_status = []
        self.requests.clear()
        self.request_times.clear()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": "server_error", "code": str(status)}}
    return JSONResponse(body, status_code=status, headers=headers)


def _chunk(model: str, cid: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def build_app(behaviour: FakeBehaviour) -> Starlette:
    """The Starlette app answering ``POST /v1/chat/completions``."""

    async def chat(request: Request) -> Response:
        body = await request.json()
        behaviour.requests.append(body)
        behaviour.request_times.append(time.monotonic())
        model = str(body.get("model", ""))
        if behaviour.rate_limit_times > 0:
            behaviour.rate_limit_times -= 1
            return _error(429, "slow down", {"Retry-After": behaviour.retry_after})
        if model in behaviour.fail_models:
            return _error(500, f"{model} is broken")
        if behaviour.fail_status:
            status = behaviour.fail_status.pop(0)
            return _error(status, f"refused with {status}", {"Retry-After": behaviour.retry_after})

        text = '{"title": "Broken", "items": [1, 2' if behaviour.invalid_json else behaviour.reply
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion_tokens = len(text.split())
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"

        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cut = behaviour.cut_clean_times > 0
        behaviour.cut_clean_times -= 1 if cut else 0

        async def events() -> AsyncIterator[str]:
            words = text.split(" ")
            pieces = [" ".join(words[i : i + 3]) for i in range(0, len(words), 3)]
            for i, piece in enumerate(pieces):
                if cut and i == len(pieces) // 2:
                    return  # the body ends cleanly: no finish reason, no [DONE]
                content = piece if i == 0 else " " + piece
                delta: dict[str, Any] = {"content": content}
                if i == 0:
                    delta["role"] = "assistant"
                yield f"data: {json.dumps(_chunk(model, cid, delta, None))}\n\n"
                # Yield control so chunks really arrive separately.
                await asyncio.sleep(0)
            yield f"data: {json.dumps(_chunk(model, cid, {}, 'stop'))}\n\n"
            if include_usage:
                usage_chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                yield f"data: {json.dumps(usage_chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
    ]
    return Starlette(routes=routes)


@dataclass
class FakeOpenAIServer:
    """A running fake server: its base URL (ending in ``/v1``) and behaviour."""

    base_url: str
    behaviour: FakeBehaviour


@contextmanager
def run_fake_openai() -> Iterator[FakeOpenAIServer]:
    """Start the fake server in a daemon thread; stop it on exit."""
    behaviour = FakeBehaviour()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Binding to port 0 ourselves avoids the race of probing for a free port.
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(behaviour), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.01)
    try:
        yield FakeOpenAIServer(base_url=f"http://127.0.0.1:{port}/v1", behaviour=behaviour)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
