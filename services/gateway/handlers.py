"""The gateway's subscribers: the event log (durable) and live fan-out (per replica)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aio_pika.exceptions import ChannelInvalidStateError
from faststream.rabbit import RabbitQueue

from services.gateway.event_batches import BATCH_SIZE, EventBatcher
from services.gateway.live import EventHub
from services.gateway.streams import EventLog, StoredEvent
from shared.broker import current_delivery
from shared.runtime import Runtime
from shared.topology import event_queue, events_exchange, gateway_live_exchange


def register(runtime: Runtime, event_log: EventLog, hub: EventHub) -> None:
    """Store every event, then fan it out to every replica's open streams."""
    live_out = runtime.broker.publisher(
        exchange=gateway_live_exchange,
        title="gateway.live:publish",
        description="A stored event with its sequence number, for every gateway replica.",
    )

    async def publish_live(stored: list[StoredEvent]) -> None:
        # a batch's events in as few messages as fit under the message size limit, each
        # event encoded once
        limit = runtime.settings.max_message_bytes // 2
        parts: list[bytes] = []
        size = 0
        for event in stored:
            part = json.dumps(event.to_wire(), separators=(",", ":")).encode()
            if parts and size + len(part) > limit:
                await live_out.publish(live_message(parts), content_type="application/json")
                parts, size = [], 0
            parts.append(part)
            size += len(part) + 1
        await live_out.publish(live_message(parts), content_type="application/json")

    batcher = EventBatcher(event_log, publish_live)
    # in queue order: an event's sequence number must follow causality (every
    # lesson.written is queued before the course.ready it leads to); the consumer holds
    # BATCH_SIZE messages and the batcher stores them in delivery order, as many at once
    # as have arrived (services/gateway/event_batches.py)
    log_sub = runtime.durable_subscriber(
        event_queue("gateway.event-log", "#", ordered=True),
        events_exchange,
        ordered=True,
        prefetch=BATCH_SIZE,
    )

    @log_sub
    async def store_event(body: dict[str, Any]) -> None:
        """Store an event once (by message_id) with its per-job sequence number."""
        raw = current_delivery(runtime.broker).raw_message
        try:
            channel = raw.channel
        except ChannelInvalidStateError:
            return  # the channel closed meanwhile: the broker delivers this one again
        await batcher.submit(body, raw.delivery_tag or 0, channel)

    live_queue = RabbitQueue(
        f"gateway.live.{uuid.uuid4().hex[:12]}", exclusive=True, auto_delete=True
    )

    @runtime.broker.subscriber(live_queue, gateway_live_exchange)
    async def fan_out(body: dict[str, Any]) -> None:
        """Hand stored events (a batch of them, in order) to this replica's open streams.

        One event (``job_id``, ``seq``, ...) is what an older replica publishes."""
        for event in body.get("events", (body,)):
            hub.deliver(
                StoredEvent(
                    job_id=event["job_id"],
                    seq=int(event["seq"]),
                    event=event["event"],
                    body=event["body"],
                )
            )


def live_message(parts: list[bytes]) -> bytes:
    """``{"events": [...]}`` from events already encoded as JSON."""
    return b'{"events":[' + b",".join(parts) + b"]}"
