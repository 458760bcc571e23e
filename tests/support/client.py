"""What a test client does often: get a guest token, create a course, publish over AMQP."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx

PROFILE = {
    "topic": "Python asyncio",
    "level": "beginner",
    "duration_hours": 8,
    "expectations": "build a concurrent web scraper",
    "language": "en",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def guest_token(client: httpx.AsyncClient) -> str:
    resp = await client.post("/v1/auth/guest")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["access_token"])


async def create_course(client: httpx.AsyncClient, token: str, **overrides: object) -> dict:
    resp = await client.post("/v1/courses", json={**PROFILE, **overrides}, headers=bearer(token))
    assert resp.status_code == 202, resp.text
    return dict(resp.json())


async def publish_command(
    amqp_url: str,
    body: dict,
    *,
    routing_key: str = "planner.plan_course",
    times: int = 1,
    exchange_name: str = "lectern.commands",
) -> None:
    """Publish ``body`` to lectern.commands (or ``exchange_name``) as a plain AMQP client
    would (confirms on)."""
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(exchange_name)
        for _ in range(times):
            await exchange.publish(
                aio_pika.Message(
                    json.dumps(body).encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=routing_key,
            )


async def wait_rows(conn: asyncpg.Connection, sql: str, *args: Any, settle: float = 2.0) -> list:
    """Rows once some appear, after waiting ``settle`` more seconds for any duplicates."""
    for _ in range(300):
        if await conn.fetch(sql, *args):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(settle)
    return list(await conn.fetch(sql, *args))


async def collect_events(
    amqp_url: str,
    correlation_id: str,
    started: asyncio.Event,
    *,
    until: frozenset[str] = frozenset({"course.ready", "job.failed"}),
    timeout: float = 90.0,
) -> list[dict]:
    """Events on lectern.events with ``correlation_id``, as an outside subscriber sees them.

    Sets ``started`` once its queue is bound; returns after an event in ``until``.
    """
    conn = await aio_pika.connect(amqp_url)
    out: list[dict] = []
    async with conn:
        channel = await conn.channel()
        exchange = await channel.get_exchange("lectern.events")
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="#")
        started.set()
        async with asyncio.timeout(timeout), queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    body = json.loads(message.body)
                    if body.get("correlation_id") != correlation_id:
                        continue
                    out.append(body)
                    if body["schema"].rsplit(".", 1)[0] in until:
                        return out
    return out


async def ready_course(
    client: httpx.AsyncClient, token: str, **overrides: object
) -> tuple[dict, list[Any]]:
    """An autopilot course followed to ``course.ready``: (the 202 answer, its events)."""
    from tests.support.sse import read_events

    accepted = await create_course(client, token, auto_finalize=True, **overrides)
    events = await read_events(
        client, accepted["events_url"], token, until={"course.ready", "job.failed"}
    )
    assert events[-1].event == "course.ready", events[-1].data
    return accepted, events


def event_body(job_id: str, schema: str, payload: dict[str, Any], user_id: str) -> dict[str, Any]:
    """An event as a service publishes it on ``lectern.events`` (benchmarks' input)."""
    return {
        "message_id": str(uuid.uuid4()),
        "job_id": job_id,
        "correlation_id": job_id,
        "causation_id": None,
        "tenant_id": "default",
        "user_id": user_id,
        "schema": schema,
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }
