"""The event log and live fan-out behind ``GET /v1/jobs/{job_id}/events``.

Every event on ``lectern.events`` is stored once (by message_id) with a per-job
sequence number. The number comes from the job row, updated in the same transaction,
so per job the commit order is the sequence order: an SSE client resuming from
``Last-Event-ID: n`` gets exactly the events after n. After commit the stored event is
fanned out to every gateway replica's exclusive queue, whose open streams get it
(services/gateway/live.py); a stream that misses one reads it from the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.gateway.budgets import charge
from services.gateway.store import events, jobs
from shared.db import database_unavailable
from shared.messaging import PermanentError
from shared.metrics import JOB_DURATION, JOBS
from shared.settings import LecternSettings

log = logging.getLogger("lectern.gateway.streams")
DEFAULT_FINAL_EVENTS = ["course.ready", "job.failed"]


@dataclass(frozen=True)
class StoredEvent:
    """One event of a job, as stored in the log."""

    job_id: str
    seq: int
    event: str
    body: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "seq": self.seq, "event": self.event, "body": self.body}


def event_name(schema: str) -> str:
    """``course.plan_proposed.v1`` → ``course.plan_proposed``."""
    return schema.rsplit(".v", 1)[0] if ".v" in schema else schema


DATABASE_PATIENCE_S = 120.0


class EventLog:
    """Stores events and reads a job's events back."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: LecternSettings,
        wake_relay: Callable[[], None] = lambda: None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wake_relay = wake_relay  # an event put in the outbox goes out at once

    async def record(self, body: dict[str, Any]) -> StoredEvent | None:
        """Store one event; None when it was stored before (a redelivery)."""
        job_id, message_id, schema = body.get("job_id"), body.get("message_id"), body.get("schema")
        for name, value in (("job_id", job_id), ("message_id", message_id), ("schema", schema)):
            if not isinstance(value, str) or not value or len(value) > 200:
                raise PermanentError(f"event without a valid {name}")
        name = event_name(str(schema))
        async with self.sessionmaker() as session, session.begin():
            seen = await session.execute(
                select(events.c.seq).where(events.c.message_id == message_id)
            )
            if seen.first() is not None:
                return None
            # the job row is the per-job sequencer; its row lock orders commits
            upsert = insert(jobs).values(
                job_id=job_id,
                user_id=None,
                tenant_id=body.get("tenant_id"),
                kind="external",
                final_events=DEFAULT_FINAL_EVENTS,
                status="running",
                last_seq=1,
            )
            row = (
                await session.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[jobs.c.job_id],
                        set_={"last_seq": jobs.c.last_seq + 1},
                    ).returning(jobs.c.last_seq, jobs.c.final_events, jobs.c.kind)
                )
            ).one()
            seq, final_events = int(row.last_seq), list(row.final_events or [])
            kind = str(row.kind or "external")
            await session.execute(
                insert(events).values(
                    job_id=job_id, seq=seq, message_id=message_id, event=name, body=body
                )
            )
            exhausted = name == "llm.call_completed" and await charge(session, body, self.settings)
            ended = None
            if name in final_events:
                ended = (
                    await session.execute(
                        update(jobs)
                        .where(jobs.c.job_id == job_id, jobs.c.status == "running")
                        .values(status="failed" if name == "job.failed" else "completed")
                        .returning(func.extract("epoch", func.now() - jobs.c.created_at))
                    )
                ).scalar()
        if exhausted:
            self.wake_relay()
        # counted once committed: a rolled-back attempt is redelivered and counted then
        if seq == 1 and kind == "external":
            JOBS.labels(kind, "started").inc()
        if ended is not None:
            outcome = "failed" if name == "job.failed" else "completed"
            JOBS.labels(kind, outcome).inc()
            JOB_DURATION.labels(kind, outcome).observe(max(0.0, float(ended)))
        return StoredEvent(job_id=str(job_id), seq=seq, event=name, body=body)

    async def record_in_order(
        self, body: dict[str, Any], *, patience: float = DATABASE_PATIENCE_S
    ) -> StoredEvent | None:
        """:meth:`record`, waiting out a database outage in place (up to ``patience`` s).

        The log takes one event at a time in queue order. A failed event handed to the
        retry queue would come back behind later ones (chunks out of order, a
        ``course.ready`` before its last lesson) and be dead-lettered, gone from the
        log, after a few seconds of outage; holding it here keeps the queue waiting.
        """
        deadline = time.monotonic() + patience
        delay = 0.2
        while True:
            try:
                return await self.record(body)
            except Exception as exc:
                if not database_unavailable(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "event log: database unavailable (%s), retrying in %.1fs",
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def since(self, job_id: str, after_seq: int, limit: int = 1000) -> list[StoredEvent]:
        """The job's events with seq > ``after_seq``, in order."""
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(events.c.seq, events.c.event, events.c.body)
                .where(events.c.job_id == job_id, events.c.seq > after_seq)
                .order_by(events.c.seq)
                .limit(limit)
            )
            return [
                StoredEvent(job_id=job_id, seq=int(r.seq), event=r.event, body=r.body) for r in rows
            ]

    async def last_seqs(self, job_ids: list[str]) -> dict[str, int]:
        """The last stored seq of each of ``job_ids`` that exists, in one query."""
        async with self.sessionmaker() as session:
            rows = await session.execute(
                select(jobs.c.job_id, jobs.c.last_seq).where(jobs.c.job_id.in_(job_ids))
            )
            return {r.job_id: int(r.last_seq) for r in rows}
