"""HTTP metrics by route template (a pure ASGI middleware, so SSE streams pass through).

The ``route`` label is the matched template (``/v1/courses/{course_id}``), never the
raw path, so ids do not become label values; a request no route matched is
``unmatched``.
"""

from __future__ import annotations

import time
from typing import Any

from shared.metrics import HTTP_DURATION, HTTP_REQUESTS

Scope = dict[str, Any]


class HttpMetrics:
    """Counts requests by method, route and status, and times them to their headers."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before the response started is a 500 to the client

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                route = _route(scope)
                HTTP_DURATION.labels(scope["method"], route).observe(time.perf_counter() - start)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_REQUESTS.labels(scope["method"], _route(scope), str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
