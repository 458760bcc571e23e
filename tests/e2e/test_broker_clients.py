"""An internal system driving Lectern with a plain AMQP client (no Lectern code)."""

from __future__ import annotations

import asyncio
import json
import uuid

import aio_pika
import asyncpg
import pytest

from tests.support.processes import Cluster

pytestmark = pytest.mark.e2e


async def _wait_rows(conn: asyncpg.Connection, sql: str, *args: object, settle: float = 2.0):
    """Rows once some appear, after waiting ``settle`` more seconds for any duplicates."""
    for _ in range(300):
        if await conn.fetch(sql, *args):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(settle)
    return await conn.fetch(sql, *args)


async def publish_command(amqp_url: str, body: dict, *, times: int = 1) -> None:
    """Publish ``body`` to lectern.commands as a plain AMQP client would (confirms on)."""
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange("lectern.commands")
        for _ in range(times):
            await exchange.publish(
                aio_pika.Message(
                    json.dumps(body).encode(),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key="planner.plan_course",
            )


async def test_redelivered_command_produces_no_second_plan(
    cluster: Cluster, infra: dict[str, str], db: asyncpg.Connection
) -> None:
    job_id, course_id, message_id = (str(uuid.uuid4()) for _ in range(3))
    command = {
        "message_id": message_id,
        "job_id": job_id,
        "correlation_id": "lms-42",
        "tenant_id": "acme",
        "schema": "planner.plan_course.v1",
        "payload": {
            "course_id": course_id,
            "topic": "SQL window functions",
            "level": "advanced",
            "duration_hours": 6,
            "language": "en",
        },
    }
    # the same message twice, as a redelivery would bring it
    await publish_command(infra["AMQP_URL"], command, times=2)

    proposed = await _wait_rows(
        db,
        "SELECT body FROM gateway.events WHERE job_id = $1 AND event = $2",
        job_id,
        "course.plan_proposed",
    )
    assert len(proposed) == 1, "one plan, however often the command is delivered"
    body = json.loads(proposed[0]["body"])
    assert body["correlation_id"] == "lms-42" and body["tenant_id"] == "acme"
    assert body["causation_id"] == message_id
    calls = await db.fetch("SELECT id FROM prompts.executions WHERE job_id = $1", job_id)
    assert len(calls) == 1, "the LLM was paid once"
    chats = await db.fetch("SELECT id FROM planner.chat_messages WHERE course_id = $1", course_id)
    assert len(chats) == 1


async def test_unknown_command_gets_job_failed(
    cluster: Cluster, infra: dict[str, str], db: asyncpg.Connection
) -> None:
    job_id = str(uuid.uuid4())
    await publish_command(
        infra["AMQP_URL"],
        {
            "job_id": job_id,
            "correlation_id": "x",
            "schema": "planner.plan_course.v9",
            "payload": {},
        },
    )
    failed = await _wait_rows(
        db,
        "SELECT body FROM gateway.events WHERE job_id = $1 AND event = 'job.failed'",
        job_id,
        settle=0.5,
    )
    assert len(failed) == 1
    payload = json.loads(failed[0]["body"])["payload"]
    assert "planner.plan_course.v9" in payload["reason"]
    assert payload["retryable"] is False
