"""The event log stores events in batches, in delivery order.

The log takes events from one queue with a single active consumer, in queue order
(their per-job sequence numbers must follow causality). Taking one message at a time
(prefetch 1) made each event wait for the previous one's store, fan-out publish, ack
and the broker's next delivery: a few hundred events a second for the whole system.
Now the consumer holds up to ``BATCH_SIZE`` unacked messages; each handler hands its
event to :class:`EventBatcher` and returns once the event is stored, then acks.

FastStream runs the handlers of one subscriber as concurrent tasks, so the order in
which they reach the batcher is not the delivery order. The batcher restores it from
the delivery tags: a channel numbers its deliveries 1, 2, 3, ... and the log's
subscriber has a channel of its own, so the next event to store is the one whose tag
follows the last stored. A batch is the gap-free run of tags that has arrived. Tags
start again at 1 on the new channel after a broker reconnect: deliveries are ordered
by channel first (the channel seen later comes after), then by tag. (An earlier
version sorted each batch by tag alone and stored a batch that mixed channels out of
order, which the chaos suite caught.) A tag that never arrives (a message whose handler
did not run: it failed to decode) is given up on after ``GAP_WAIT_S``.

A batch that fails for a reason other than the database being away (one event
PostgreSQL rejects) is stored again one event at a time, so only the faulty event fails
and goes the way of any failed message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.gateway.streams import (
    DATABASE_PATIENCE_S,
    EventLog,
    StoredEvent,
    check_event,
    wait_for_database,
)
from shared.db import database_unavailable

log = logging.getLogger("lectern.gateway.event_batches")

BATCH_SIZE = 128  # unacked messages the log's consumer holds (its prefetch)
GAP_WAIT_S = 1.0  # how long the next tag may be missing before it is given up on
_CHANNELS_KEPT = 8  # channels remembered (by identity) to order their deliveries

Key = tuple[int, int]  # (channel generation, delivery tag)


@dataclass
class _Delivery:
    body: dict[str, Any]
    key: Key
    done: asyncio.Future[StoredEvent | None]


class EventBatcher:
    """Stores delivered events in delivery order, as many at once as have arrived.

    ``submit`` is called by the log's handler for each delivery (up to the prefetch
    count at once) and returns when that event is stored; the handler then acks.
    Stored events go to ``publish_live`` a batch at a time, in order.
    """

    def __init__(
        self,
        event_log: EventLog,
        publish_live: Callable[[list[StoredEvent]], Awaitable[None]],
        *,
        batch_size: int = BATCH_SIZE,
        patience: float = DATABASE_PATIENCE_S,
        gap_wait: float = GAP_WAIT_S,
    ) -> None:
        self.event_log = event_log
        self.publish_live = publish_live
        self.batch_size = batch_size
        self.patience = patience
        self.gap_wait = gap_wait
        self._pending: dict[Key, _Delivery] = {}
        self._expected: Key | None = None  # the key stored next
        self._channels: dict[int, tuple[object, int]] = {}  # id -> (channel, generation)
        self._generation = 0
        self._arrived = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and the benchmark: how many batches were stored
        self.gaps = 0  # tags given up on

    def _generation_of(self, channel: object) -> int:
        known = self._channels.get(id(channel))
        if known is not None and known[0] is channel:
            return known[1]
        self._generation += 1
        self._channels[id(channel)] = (channel, self._generation)  # held: no id reuse
        while len(self._channels) > _CHANNELS_KEPT:
            del self._channels[next(iter(self._channels))]
        return self._generation

    async def submit(
        self, body: dict[str, Any], tag: int, channel: object = None
    ) -> StoredEvent | None:
        """Store ``body``, delivered as ``tag`` on ``channel``, after the deliveries
        before it; its stored event (None when it was stored before)."""
        check_event(body)  # a malformed event fails alone, before it joins a batch
        key = (self._generation_of(channel), tag)
        delivery = _Delivery(body, key, asyncio.get_running_loop().create_future())
        previous = self._pending.get(key)
        if previous is not None and not previous.done.done():
            previous.done.cancel()  # the same tag twice: only on a misused channel
        self._pending[key] = delivery
        self._arrived.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="event-log-batches")
        return await delivery.done

    def _take(self) -> list[_Delivery]:
        """The gap-free run of deliveries that follows the last one stored."""
        first = min(self._pending)
        expected = self._expected
        if expected is None or first[0] > expected[0]:
            # the first delivery seen, or a new channel (the old one is gone, with what
            # it had yet to deliver: the broker delivers that again on the new one)
            expected = (first[0], 1)
        if first > expected:
            if not any(k[0] > expected[0] for k in self._pending):
                return []  # the next delivery has not reached the batcher yet
            # a newer channel has delivered: this one is gone, and what it had yet to
            # deliver comes again on the new one
        batch = []
        key = first
        while key in self._pending and len(batch) < self.batch_size:
            batch.append(self._pending.pop(key))
            key = (key[0], key[1] + 1)
        self._expected = max(key, expected)
        return batch

    async def _run(self) -> None:
        while self._pending:
            self._arrived.clear()
            await asyncio.sleep(0)  # handlers already scheduled reach the batcher first
            batch = self._take()
            if not batch:
                try:
                    await asyncio.wait_for(self._arrived.wait(), self.gap_wait)
                except TimeoutError:
                    skipped_to = min(self._pending)
                    log.warning(
                        "event log: delivery %s never reached the log; going on from %s",
                        self._expected,
                        skipped_to,
                    )
                    self.gaps += 1
                    self._expected = skipped_to
                continue
            await self._store_batch(batch)

    async def _store_batch(self, batch: list[_Delivery]) -> None:
        try:
            stored = await self._store([d.body for d in batch])
        except Exception as exc:
            for d in batch:
                if not d.done.done():
                    d.done.set_exception(exc)
            return
        live = [s for s in stored if isinstance(s, StoredEvent)]
        if live:
            try:
                await self.publish_live(live)
            except Exception as exc:  # streams fill the gap from the log
                log.warning("live fan-out failed for %d events: %s", len(live), exc)
        for d, s in zip(batch, stored, strict=True):
            if d.done.done():
                continue
            if isinstance(s, BaseException):
                d.done.set_exception(s)
            else:
                d.done.set_result(s)
        self.batches += 1

    async def _store(
        self, bodies: list[dict[str, Any]]
    ) -> list[StoredEvent | BaseException | None]:
        """The batch in one transaction (waiting out a database outage in place); if it
        fails otherwise, each event on its own, so only a faulty one fails."""
        try:
            return list(
                await wait_for_database(
                    lambda: self.event_log.record_many(bodies), patience=self.patience
                )
            )
        except Exception as exc:
            if database_unavailable(exc) or len(bodies) == 1:
                raise
            log.warning("a batch of %d events failed (%s); storing them one by one",
                        len(bodies), exc)  # fmt: skip
        out: list[StoredEvent | BaseException | None] = []
        for body in bodies:
            try:
                out.append(await self.event_log.record_in_order(body, patience=self.patience))
            except Exception as exc:
                out.append(exc)
        return out

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
