"""The event log stores events in batches, in delivery order.

The log takes events from one queue, one consumer at a time, in queue order (their
per-job sequence numbers must follow causality). One transaction per event capped the
whole system at a few hundred events per second. Now the consumer takes up to
``batch_size`` messages at once (prefetch); the events delivered while a batch commits
are stored together in the next one, in delivery order, and each message is acked once
its batch has committed. At low load a batch is one event and nothing waits.

A batch that fails for a reason other than the database being away (one event
PostgreSQL rejects) is stored again one event at a time, so only the faulty event fails
and goes the way of any failed message.
"""

from __future__ import annotations

import asyncio
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

BATCH_SIZE = 256


@dataclass
class _Delivery:
    body: dict[str, Any]
    tag: int
    done: asyncio.Future[StoredEvent | None]


class EventBatcher:
    """Gathers the events delivered while a batch commits into the next batch.

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
    ) -> None:
        self.event_log = event_log
        self.publish_live = publish_live
        self.batch_size = batch_size
        self.patience = patience
        self._waiting: list[_Delivery] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and the benchmark: how many transactions

    async def submit(self, body: dict[str, Any], tag: int = 0) -> StoredEvent | None:
        check_event(body)  # a malformed event fails alone, before it joins a batch
        delivery = _Delivery(body, tag, asyncio.get_running_loop().create_future())
        self._waiting.append(delivery)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await delivery.done

    async def _flush(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # deliveries already read from the socket join in
            batch = self._waiting[: self.batch_size]
            del self._waiting[: self.batch_size]
            batch.sort(key=lambda d: d.tag)  # delivery order, whatever order tasks ran in
            try:
                stored = await self._store([d.body for d in batch])
            except Exception as exc:
                for d in batch:
                    if not d.done.done():
                        d.done.set_exception(exc)
                continue
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
