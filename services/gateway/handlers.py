"""The gateway's subscribers: the event log (durable) and live fan-out (per replica)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
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

log = logging.getLogger("lectern.gateway.live")
JSON = "application/json"


HELLO_EVERY_S = 10.0  # how often a replica says it is there
PEER_TTL_S = 35.0  # a replica not heard from for this long is taken to be gone


class LiveFanOut:
    """Stored events to the open streams of every replica.

    This replica's own streams get a stored batch at once, from the event log's batcher;
    the live exchange carries it to the other replicas, each through its own queue. What
    a replica publishes carries its name, so it skips its own batches when they come
    back: its streams have them already.

    A replica publishes only while it knows another one is there: alone, a batch would
    make the round trip through the broker for nobody. Replicas know each other from
    hellos on the live exchange, sent at start, after a broker reconnect and every
    ``HELLO_EVERY_S``; a hello names the replicas its sender knows. A replica that hears
    from one it did not know (or that does not know it) answers with a hello naming it
    as new. Until then it did not publish for that one: so a replica named as new in a
    hello has its streams check the log (``on_known``), which holds everything its peer
    stored before sending that hello.
    """

    def __init__(
        self,
        hub: EventHub,
        publish: Callable[..., Awaitable[Any]],
        limit: int,
        *,
        on_known: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.publish = publish  # the live exchange's publisher
        self.limit = limit  # bytes of events per message
        self.replica = uuid.uuid4().hex[:12]
        self.on_known = on_known or hub.check_soon
        self.clock = clock
        self.peers: dict[str, float] = {}  # replica -> when last heard from
        self._announce_now = asyncio.Event()

    def _peers(self) -> dict[str, float]:
        """The replicas heard from within ``PEER_TTL_S``; the others are forgotten."""
        gone = self.clock() - PEER_TTL_S
        for replica in [r for r, heard in self.peers.items() if heard < gone]:
            del self.peers[replica]
        return self.peers

    async def stored(self, events: list[StoredEvent]) -> None:
        """Hand a stored batch to this replica's streams, then publish it for the others
        (if any): in as few messages as fit under the size limit, each event encoded once."""
        for event in events:
            self.hub.deliver(event)
        if not self._peers():
            return
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

    def hello(self, new: str | None = None) -> dict[str, Any]:
        """This replica's hello: its name, the replicas it knows, the one it just came to
        know. ``events`` is empty for replicas one version old, which take every live
        message as a batch of events."""
        hello: dict[str, Any] = {
            "replica": self.replica,
            "hello": True,
            "peers": sorted(self._peers()),
            "events": [],
        }
        if new is not None:
            hello["new"] = new
        return hello

    async def announce(self, new: str | None = None) -> None:
        await self.publish(self.hello(new), content_type=JSON)

    def announce_soon(self, *_: object) -> None:
        """Ask :meth:`keep_announcing` for a hello now (a broker reconnect callback)."""
        self._announce_now.set()

    async def keep_announcing(self, every: float = HELLO_EVERY_S) -> None:
        """A hello now, then every ``every`` seconds and when asked; a failed one is
        logged and tried again at the next turn."""
        while True:
            self._announce_now.clear()
            try:
                await self.announce()
            except Exception as exc:
                log.warning("live fan-out: hello not sent (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._announce_now.wait(), every)

    async def received(self, body: dict[str, Any]) -> None:
        """Take another replica's hello, or hand its batch (its events in order) to this
        replica's streams. One event (``job_id``, ``seq``, ...) is what a replica two
        versions old publishes; a replica one version old sends batches but no hellos
        (either publishes every batch, so hearing from it is enough)."""
        sender = body.get("replica") or "unnamed"
        if sender == self.replica:
            return
        new = sender not in self._peers()
        self.peers[sender] = self.clock()
        if body.get("hello"):
            if body.get("new") == self.replica:
                self.on_known()  # what it stored before it knew this replica is in the log
            if new or self.replica not in body.get("peers", ()):
                await self._answer(sender if new else None)
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
        if new and "replica" in body:  # the streams first, then the answer
            await self._answer(sender)

    async def _answer(self, new: str | None) -> None:
        try:
            await self.announce(new)
        except Exception as exc:  # the next periodic hello makes up for it
            log.warning("live fan-out: no answer to replica %s (%s)", new, exc)


def register(runtime: Runtime, event_log: EventLog, hub: EventHub) -> LiveFanOut:
    """Store every event, then fan it out to every replica's open streams."""
    live_out = runtime.broker.publisher(
        exchange=gateway_live_exchange,
        title="gateway.live:publish",
        description="A batch of stored events with their sequence numbers, for every "
        "gateway replica, and the name of the replica that stored them; or a replica's "
        "hello, naming the replicas it knows.",
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
        """Another replica's hello, or its stored events for this replica's open streams."""
        await live.received(body)

    return live


def live_message(parts: list[bytes], replica: str) -> bytes:
    """``{"replica": ..., "events": [...]}`` from events already encoded as JSON."""
    head = b'{"replica":' + json.dumps(replica).encode() + b',"events":['
    return head + b",".join(parts) + b"]}"
