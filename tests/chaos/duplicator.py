"""Duplicate deliveries on purpose: a share of the commands and events that do costly or
counted work is published a second time, identical (same message_id, body, headers), a
few seconds later, as a publisher retrying after a lost confirm or a redelivery would.

The services must treat the copy as the same message: no second LLM call for a step
already stored (re-billed), no second event at the client (duplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field

import aio_pika

log = logging.getLogger("lectern.chaos.duplicator")

# (exchange, routing key) of what gets copied: the commands that call the LLM, and the
# events whose handlers count or assess
COPIED = [
    ("lectern.commands", "planner.plan_course"),
    ("lectern.commands", "planner.finalize_course"),
    ("lectern.commands", "content.write_lesson"),
    ("lectern.events", "lesson.written"),
    ("lectern.events", "assessment.ready"),
]


@dataclass
class Duplicates:
    """What the duplicator did."""

    seen: int = 0
    published: int = 0
    failed: int = 0  # the broker was away when the copy was due
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


async def duplicate(
    amqp_url: str, share: float, stop: asyncio.Event, rng: random.Random, out: Duplicates
) -> None:
    """Copy ``share`` of the matching messages, each 0.5-6 s later, until ``stop`` is set;
    then publish the copies still due and return."""
    connection = await aio_pika.connect_robust(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for exchange, key in COPIED:
            await queue.bind(exchange, routing_key=key)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            out.seen += 1
            if rng.random() < share:
                task = asyncio.create_task(_copy(channel, message, rng.uniform(0.5, 6.0), out))
                out.tasks.add(task)
                task.add_done_callback(out.tasks.discard)

        # a robust channel consumes again after the broker restarts
        await queue.consume(on_message, no_ack=True)
        await stop.wait()
        if out.tasks:
            await asyncio.wait(out.tasks, timeout=10)
    finally:
        with contextlib.suppress(Exception):
            await connection.close()


async def _copy(
    channel: aio_pika.abc.AbstractChannel,
    message: aio_pika.abc.AbstractIncomingMessage,
    delay: float,
    out: Duplicates,
) -> None:
    await asyncio.sleep(delay)
    copy = aio_pika.Message(
        message.body,
        headers=dict(message.headers or {}),
        content_type=message.content_type,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    try:
        exchange = await channel.get_exchange(str(message.exchange), ensure=False)
        await exchange.publish(copy, routing_key=str(message.routing_key))
        out.published += 1
    except Exception as exc:  # the broker restarting: this copy is not made
        out.failed += 1
        log.info("duplicate not published: %s", exc)
