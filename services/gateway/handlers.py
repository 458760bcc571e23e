"""The gateway's subscribers: the event log (durable) and live fan-out (per replica)."""

from __future__ import annotations

import uuid
from typing import Any

from faststream.rabbit import RabbitQueue

from services.gateway.live import EventHub
from services.gateway.streams import EventLog, StoredEvent
from shared.runtime import Runtime
from shared.topology import event_queue, events_exchange, gateway_live_exchange


def register(runtime: Runtime, event_log: EventLog, hub: EventHub) -> None:
    """Store every event, then fan it out to every replica's open streams."""
    live_out = runtime.broker.publisher(
        exchange=gateway_live_exchange,
        title="gateway.live:publish",
        description="A stored event with its sequence number, for every gateway replica.",
    )
    # one at a time, in queue order: an event's sequence number must follow causality
    # (every lesson.written is queued before the course.ready it leads to)
    log_sub = runtime.durable_subscriber(
        event_queue("gateway.event-log", "#", ordered=True), events_exchange, ordered=True
    )

    @log_sub
    async def store_event(body: dict[str, Any]) -> None:
        """Store an event once (by message_id) with its per-job sequence number."""
        stored = await event_log.record_in_order(body)
        if stored is not None:
            await live_out.publish(stored.to_wire())

    live_queue = RabbitQueue(
        f"gateway.live.{uuid.uuid4().hex[:12]}", exclusive=True, auto_delete=True
    )

    @runtime.broker.subscriber(live_queue, gateway_live_exchange)
    async def fan_out(body: dict[str, Any]) -> None:
        """Hand a stored event to this replica's open streams for its job."""
        hub.deliver(
            StoredEvent(
                job_id=body["job_id"], seq=int(body["seq"]), event=body["event"], body=body["body"]
            )
        )
