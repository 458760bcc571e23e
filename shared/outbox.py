"""Transactional outbox: events are written with the state change, then relayed.

A handler calls :func:`enqueue` inside its transaction; after commit it calls
:meth:`OutboxRelay.wake`. The relay publishes pending rows with publisher confirms
and marks them published; it also polls, so rows left by a crashed process go out
when any replica runs again. Several replicas share the work (``SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from functools import cache
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from sqlalchemy import MetaData, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts.base import COMMANDS_EXCHANGE, Message

log = logging.getLogger("lectern.outbox")


def outbox_table(metadata: MetaData) -> Table:
    """The service's outbox table."""
    return metadata.tables[f"{metadata.schema}.outbox"]


async def enqueue(session: AsyncSession, metadata: MetaData, message: Message) -> None:
    """Add ``message`` to the outbox in the session's transaction (once per message_id)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)  # keeps the trace when the relay publishes later
    await session.execute(
        _enqueue_statement(outbox_table(metadata)),
        {
            "message_id": message.message_id,
            "schema": message.SCHEMA,
            "exchange": message.exchange(),
            "routing_key": message.routing_key(),
            "body": message.to_wire(),
            "headers": carrier,
        },
    )


@cache
def _enqueue_statement(table: Table) -> Any:
    """The outbox row's insert, built once (run with the row as parameters)."""
    return insert(table).on_conflict_do_nothing(index_elements=["message_id"])


@cache
def _take_statement(table: Table, batch: int) -> Any:
    """Up to ``batch`` pending rows, oldest first, locked and marked published at once
    (built once; rows locked by another replica's relay are skipped)."""
    pending = (
        select(table.c.id)
        .where(table.c.published_at.is_(None))
        .order_by(table.c.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return (
        update(table)
        .where(table.c.id.in_(pending.scalar_subquery()))
        .values(published_at=func.now())
        .returning(*table.c)
    )


@cache
def _unmark_statement(table: Table) -> Any:
    """Rows taken that did not go out: pending again (run with ``ids``)."""
    return (
        update(table)
        .where(table.c.id.in_(bindparam("ids", expanding=True)))
        .values(published_at=None)
    )


def _in_order(rows: list[Any]) -> list[list[Any]]:
    """``rows`` (in outbox order) as the groups to publish one after another.

    Events go out one at a time, each confirmed before the next: the gateway's event
    log numbers a job's events in the order they arrive, which must follow causality.
    Consecutive commands go out together, their confirms awaited at once: their
    consumers take them concurrently anyway (a prefetch of many, row locks where it
    matters), so their order was never kept, and a finalised course's eight
    ``content.write_lesson`` no longer wait for each other's confirm (one write to the
    broker's disk each)."""
    groups: list[list[Any]] = []
    for row in rows:
        command = row.exchange == COMMANDS_EXCHANGE
        if command and groups and groups[-1][0].exchange == COMMANDS_EXCHANGE:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


class OutboxRelay:
    """Publishes pending outbox rows through the service's declared publishers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        metadata: MetaData,
        broker: Any,
        publishers: Mapping[str, Any] | None = None,
        *,
        poll_interval: float = 1.0,
        batch: int = 200,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = outbox_table(metadata)
        self.broker = broker
        self.publishers = dict(publishers or {})
        self.poll_interval = poll_interval
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Ask the relay to publish now (call after committing outbox rows)."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many went out.

        One statement takes the batch and marks it published (rows another replica
        holds are skipped); a row that then fails to go out is unmarked before the
        commit. Rows published before a failure stay marked (raising inside the
        transaction would roll the marks back), so they do not go out twice."""
        async with self.sessionmaker() as session, session.begin():
            taken = await session.execute(_take_statement(self.table, self.batch))
            rows = sorted(taken.all(), key=lambda row: row.id)
            done: list[int] = []
            failure: Exception | None = None
            try:
                for group in _in_order(rows):
                    await self._publish_group(group, done)
            except Exception as exc:
                failure = exc  # raised once the rows that did not go out are unmarked
            if len(done) < len(rows):
                sent = set(done)
                unsent = [row.id for row in rows if row.id not in sent]
                await session.execute(_unmark_statement(self.table), {"ids": unsent})
        if failure is not None:
            raise failure
        return len(done)

    async def _publish_group(self, group: list[Any], done: list[int]) -> None:
        """Publish ``group`` at once (one row: alone); add what went out to ``done``.

        Raises the first failure, after the rest of the group has been tried."""
        if len(group) == 1:
            await self._publish(group[0])
            done.append(group[0].id)
            return
        outcomes = await asyncio.gather(
            *(self._publish(row) for row in group), return_exceptions=True
        )
        done.extend(row.id for row, out in zip(group, outcomes, strict=True) if out is None)
        for out in outcomes:
            if isinstance(out, BaseException):
                raise out

    async def _publish(self, row: Any) -> None:
        body = row.body
        token = otel_context.attach(propagate.extract(row.headers or {}))
        try:
            kwargs = {
                "message_id": row.message_id,
                "correlation_id": body.get("correlation_id"),
                "persist": True,
            }
            publisher = self.publishers.get(row.schema)
            if publisher is not None:
                await publisher.publish(body, **kwargs)
            else:
                await self.broker.publish(
                    body, exchange=row.exchange, routing_key=row.routing_key, **kwargs
                )
        finally:
            otel_context.detach(token)

    async def run(self) -> None:
        """Relay until cancelled: on every wake-up, and every ``poll_interval`` seconds."""
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                while await self.publish_pending() >= self.batch:
                    pass
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                log.exception("outbox relay failed (%s in a row); will retry", failures)
                await asyncio.sleep(min(0.5 * 2**failures, 10))

    def start(self) -> None:
        """Start :meth:`run` as a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="outbox-relay")
            self._wake.set()

    async def stop(self) -> None:
        """Stop the background task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
