"""Broker guarantees on the real RabbitMQ: unroutable fails loudly; failures dead-letter."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest
from aio_pika.exceptions import DeliveryError
from faststream.rabbit import RabbitBroker

from shared.broker import make_broker
from shared.contracts.planner import PlanCourse
from shared.db import service_metadata
from shared.messaging import ERROR_HEADER, for_schema
from shared.runtime import Runtime
from shared.settings import LecternSettings
from shared.topology import commands_exchange, dead_letter_queue

pytestmark = pytest.mark.integration


async def test_unroutable_publish_raises(infra: dict[str, str]) -> None:
    broker: RabbitBroker = make_broker(
        LecternSettings(service_name="test", amqp_url=infra["AMQP_URL"])
    )
    async with broker:
        await broker.declare_exchange(commands_exchange)
        with pytest.raises(DeliveryError):
            await broker.publish(
                {"hello": "nobody"}, exchange=commands_exchange, routing_key="nobody.listens"
            )


async def _collect(url: str, queue_name: str, binding: tuple[str, str], n: int, timeout: float):
    """Bind a throwaway queue and return the first ``n`` messages (body, headers)."""
    conn = await aio_pika.connect_robust(url)
    async with conn:
        ch = await conn.channel()
        exchange = await ch.declare_exchange(binding[0], aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await ch.declare_queue(queue_name, exclusive=True)
        await queue.bind(exchange, routing_key=binding[1])
        out = []
        async with asyncio.timeout(timeout):
            async with queue.iterator() as it:
                async for message in it:
                    async with message.process():
                        out.append((json.loads(message.body), dict(message.headers)))
                    if len(out) >= n:
                        break
        return out


async def test_failing_message_is_retried_then_dead_lettered_with_job_failed(
    infra: dict[str, str],
) -> None:
    settings = LecternSettings(
        service_name="flaky",
        amqp_url=infra["AMQP_URL"],
        database_url=infra["DATABASE_URL"],
        max_attempts=3,
        retry_base_delay_ms=50,
    )
    runtime = Runtime("flaky", service_metadata("flaky"), settings)
    calls: list[int] = []

    @runtime.commands()(filter=for_schema(PlanCourse))
    async def always_fails(cmd: PlanCourse) -> None:
        calls.append(1)
        raise RuntimeError("the model provider is down")

    failed_events = asyncio.create_task(
        _collect(infra["AMQP_URL"], "test.job-failed", ("lectern.events", "job.failed"), 1, 30)
    )
    await asyncio.sleep(0.3)
    await runtime.startup()
    try:
        cmd = PlanCourse(
            job_id="job-flaky",
            correlation_id="corr-flaky",
            payload={"course_id": "c-flaky", "topic": "Rust"},
        )
        await runtime.broker.publish(
            cmd.to_wire(), exchange=commands_exchange, routing_key="flaky.plan_course"
        )
        ((event, _),) = await failed_events
        assert event["schema"] == "job.failed.v1"
        assert event["job_id"] == "job-flaky" and event["correlation_id"] == "corr-flaky"
        assert "the model provider is down" in event["payload"]["reason"]
        assert event["payload"]["retryable"] is True
        assert event["payload"]["attempts"] == 3
        assert len(calls) == 3, "bounded retries: exactly max_attempts deliveries"

        dead = await runtime.broker.declare_queue(dead_letter_queue("flaky.commands"))
        message = await dead.get(timeout=5, fail=False)
        assert message is not None, "the message must be kept in the dead-letter queue"
        assert json.loads(message.body)["message_id"] == cmd.message_id
        assert "the model provider is down" in message.headers[ERROR_HEADER]
        await message.ack()
    finally:
        await runtime.shutdown()


async def test_malformed_command_is_dead_lettered_at_once(infra: dict[str, str]) -> None:
    settings = LecternSettings(
        service_name="strict", amqp_url=infra["AMQP_URL"], database_url=infra["DATABASE_URL"]
    )
    runtime = Runtime("strict", service_metadata("strict"), settings)
    calls: list[int] = []

    @runtime.commands()(filter=for_schema(PlanCourse))
    async def handle(cmd: PlanCourse) -> None:
        calls.append(1)

    failed_events = asyncio.create_task(
        _collect(infra["AMQP_URL"], "test.job-failed-2", ("lectern.events", "job.failed"), 1, 30)
    )
    await asyncio.sleep(0.3)
    await runtime.startup()
    try:
        bad = {
            "job_id": "job-bad",
            "correlation_id": "corr-bad",
            "schema": "planner.plan_course.v1",
            "payload": {"course_id": "c", "topic": "Go", "level": "expert"},
        }
        await runtime.broker.publish(
            bad, exchange=commands_exchange, routing_key="strict.plan_course"
        )
        ((event, _),) = await failed_events
        assert event["job_id"] == "job-bad"
        assert event["payload"]["retryable"] is False
        assert "payload.level" in event["payload"]["reason"]
        assert calls == []
    finally:
        await runtime.shutdown()
