"""ASGI app factory for workers: health, readiness, metrics and AsyncAPI docs.

- ``/healthz``: the process is alive and serving.
- ``/readyz``: the broker connection is up, every subscriber has its consumer
  attached, and every extra check (the database) passes; 503 naming what is not.
- ``/metrics``: Prometheus text (FastStream broker metrics plus Lectern's own).
- ``/docs/asyncapi``: the AsyncAPI document generated from the contracts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ReadinessCheck = Callable[[], Awaitable[str | None]]


def consumers_detached(broker: RabbitBroker) -> list[str]:
    """Names of subscribers whose consumer is not attached to its queue."""
    missing = []
    for sub in broker.subscribers:
        queue = getattr(sub, "_queue_obj", None)
        channel = getattr(queue, "channel", None)
        tag = getattr(sub, "_consumer_tag", None)
        closed = getattr(channel, "is_closed", False)
        if tag is None or queue is None or closed:
            missing.append(getattr(getattr(sub, "queue", None), "name", "?"))
    return missing


async def broker_readiness(broker: RabbitBroker) -> str | None:
    """None when the broker is connected and consumers are attached, else why not.

    Both are named when the connection is down: which queues this process stopped
    consuming is what an operator looks for during a broker outage.
    """
    problems = [] if await broker.ping(timeout=2.0) else ["broker: not connected"]
    missing = consumers_detached(broker)
    if missing:
        problems.append(f"consumers not attached: {', '.join(missing)}")
    return "; ".join(problems) or None


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    """A readiness check running ``SELECT 1``."""

    async def check() -> str | None:
        try:
            async with asyncio.timeout(2.0), engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return f"database: {type(exc).__name__}"
        return None

    return check


async def readiness(broker: RabbitBroker, checks: Sequence[ReadinessCheck]) -> list[str]:
    """Every readiness problem, empty when ready."""
    problems = [p for p in [await broker_readiness(broker)] if p]
    for check in checks:
        problem = await check()
        if problem:
            problems.append(problem)
    return problems


def metrics_response() -> tuple[bytes, str]:
    """The default registry in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def make_worker_app(
    broker: RabbitBroker,
    *,
    title: str,
    checks: Sequence[ReadinessCheck] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    after_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
    logger: Any = None,
) -> AsgiFastStream:
    """An ``AsgiFastStream`` app with health, readiness, metrics and AsyncAPI routes."""

    @get
    async def healthz(scope: Any) -> AsgiResponse:
        return AsgiResponse(b'{"status":"ok"}', 200, headers={"content-type": "application/json"})

    @get
    async def readyz(scope: Any) -> AsgiResponse:
        problems = await readiness(broker, checks)
        body = json.dumps({"ready": not problems, "problems": problems}).encode()
        return AsgiResponse(
            body, 200 if not problems else 503, headers={"content-type": "application/json"}
        )

    @get
    async def metrics(scope: Any) -> AsgiResponse:
        payload, content_type = metrics_response()
        return AsgiResponse(payload, 200, headers={"content-type": content_type})

    return AsgiFastStream(
        broker,
        asgi_routes=[("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)],
        specification=AsyncAPI(title=title, version="1.0.0"),
        asyncapi_path="/docs/asyncapi",
        on_startup=on_startup,
        after_startup=after_startup,
        on_shutdown=on_shutdown,
        logger=logger,
    )
