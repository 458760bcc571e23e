"""The gateway's subscribers: the event log (durable) and live fan-out (per replica)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.exceptions import ChannelInvalidStateError
from faststream.rabbit import RabbitQueue

from services.gateway.event_batches import BATCH_SIZE, EventBatcher
from services.gateway.live import EventHub
from services.gateway.streams import EventLog, StoredEvent
from shared.broker import current_delivery
from shared.runtime import Runtime
from shared.topology import event_queue, events_exchange, gateway_live_exchange

JSON = "application/json"


class LiveFanOut:
    """Stored events to the open streams of every replica.

    This replica's own streams get a stored batch at once, from the event log's batcher;
    the live exchange carries it to the other replicas, each through its own queue. What
    a replica publishes carries its name, so it skips its own batches when they come
    back: its streams have them already."""

    def __init__(self, hub: EventHub, publish: Callable[..., Awaitable[Any]], limit: int) -> None:
        self.hub = hub
        self.publish = publish  # the live exchange's publisher
        self.limit = limit  # bytes of events per message
        self.replica = uuid.uuid4().hex[:12]

    async def stored(self, events: list[StoredEvent]) -> None:
        """Hand a stored batch to this replica's streams, then publish it for the others:
        in as few messages as fit under the size limit, each event encoded once."""
        for event in events:
            self.hub.deliver(event)
        parts: list[bytes] = []
        size = 0
        for event in events:
            part = json.dumps(event.to_wire(), separators=(",", ":")).encode()
            if parts and size + len(part) > self.limit:
                await self.publish(live_message(parts, self.replica), content_type=JSON)
                parts, size = [], 0
            parts.append(part)
            size += len(part) + 1
        await self.publish(live_message(parts, self.replica), content_type=JSON)

    def received(self, body: dict[str, Any]) -> None:
        """Hand another replica's batch (its events in order) to this replica's streams.

        One event (``job_id``, ``seq``, ...) is what an older replica publishes."""
        if body.get("replica") == self.replica:
            return
        for event in body.get("events", (body,)):
            self.hub.deliver(
                StoredEvent(
                    job_id=event["job_id"],
                    seq=int(event["seq"]),
                    event=event["event"],
                    body=event["body"],
                )
            )


def register(runtime: Runtime, event_log: EventLog, hub: EventHub) -> None:
    """Store every event, then fan it out to every replica's open streams."""
    live_out = runtime.broker.publisher(
        exchange=gateway_live_exchange,
        title="gateway.live:publish",
        description="A batch of stored events with their sequence numbers, for every "
        "gateway replica, and the name of the replica that stored them.",
    )
    live = LiveFanOut(hub, live_out.publish, runtime.settings.max_message_bytes // 2)
    batcher = EventBatcher(event_log, live.stored)
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

    live_queue = RabbitQueue(f"gateway.live.{live.replica}", exclusive=True, auto_delete=True)

    @runtime.broker.subscriber(live_queue, gateway_live_exchange)
    async def fan_out(body: dict[str, Any]) -> None:
        """Hand another replica's stored events to this replica's open streams."""
        live.received(body)


def live_message(parts: list[bytes], replica: str) -> bytes:
    """``{"replica": ..., "events": [...]}`` from events already encoded as JSON."""
    head = b'{"replica":' + json.dumps(replica).encode() + b',"events":['
    return head + b",".join(parts) + b"]}"
