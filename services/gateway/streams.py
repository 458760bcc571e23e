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
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

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
_DEFAULT_FINAL_JSON = json.dumps(DEFAULT_FINAL_EVENTS)

# Stores an event unless its message id was stored before: the job row (made for an
# external job) is the per-job sequencer, its row lock orders commits, and a final
# event ends a running job in the same statement. ``was`` is the job's status before
# (NULL for a new job): the job ended here when it was running and is not now.
_RECORD = text(
    f"""
WITH fresh AS (
    SELECT 1 AS one
    WHERE NOT EXISTS (SELECT 1 FROM {events.fullname} WHERE message_id = :message_id)
), prev AS (
    SELECT status FROM {jobs.fullname} WHERE job_id = :job_id
), job AS (
    INSERT INTO {jobs.fullname} AS j
        (job_id, user_id, tenant_id, kind, final_events, status, last_seq)
    SELECT :job_id, NULL, :tenant_id, 'external', CAST(:default_final AS jsonb),
        CASE WHEN CAST(:default_final AS jsonb) @> jsonb_build_array(CAST(:event AS text))
            THEN CAST(:outcome AS text) ELSE 'running' END,
        1
    FROM fresh
    ON CONFLICT (job_id) DO UPDATE SET
        last_seq = j.last_seq + 1,
        status = CASE
            WHEN j.status = 'running'
                AND j.final_events @> jsonb_build_array(CAST(:event AS text))
            THEN CAST(:outcome AS text) ELSE j.status END
    RETURNING j.last_seq, j.kind, j.status, EXTRACT(EPOCH FROM now() - j.created_at) AS age
), stored AS (
    INSERT INTO {events.fullname} (job_id, seq, message_id, event, body)
    SELECT :job_id, last_seq, :message_id, :event, CAST(:body AS jsonb) FROM job
)
SELECT job.last_seq, job.kind, job.status, job.age, (SELECT status FROM prev) AS was
FROM job
"""
)


class EventLog:
    """Stores events and reads a job's events back."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: LecternSettings,
        wake_relay: Callable[[], None] = lambda: None,
        *,
        writer: AsyncEngine | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wake_relay = wake_relay  # an event put in the outbox goes out at once
        # events are stored without BEGIN/COMMIT around their one statement, through
        # ``writer`` when given (the gateway's has no pre-ping round trip: the log retries
        # a statement that failed on a dead connection, see record_in_order)
        self.writer = writer
        self._autocommit = (writer or sessionmaker.kw["bind"]).execution_options(
            isolation_level="AUTOCOMMIT"
        )

    async def record(self, body: dict[str, Any]) -> StoredEvent | None:
        """Store one event; None when it was stored before (a redelivery).

        One statement (:data:`_RECORD`) does it all, in autocommit: one round trip per
        event, where a transaction of five statements took six. An ``llm.call_completed``
        is stored in a transaction with the charge of its tokens.
        """
        job_id, message_id, schema = body.get("job_id"), body.get("message_id"), body.get("schema")
        for name, value in (("job_id", job_id), ("message_id", message_id), ("schema", schema)):
            if not isinstance(value, str) or not value or len(value) > 200:
                raise PermanentError(f"event without a valid {name}")
        name = event_name(str(schema))
        params = {
            "job_id": job_id,
            "message_id": message_id,
            "tenant_id": body.get("tenant_id"),
            "event": name,
            "outcome": "failed" if name == "job.failed" else "completed",
            "default_final": _DEFAULT_FINAL_JSON,
            "body": json.dumps(body),
        }
        exhausted = False
        if name == "llm.call_completed":
            async with self.sessionmaker() as session, session.begin():
                row = (await session.execute(_RECORD, params)).first()
                if row is not None:
                    exhausted = await charge(session, body, self.settings)
        else:
            async with self._autocommit.connect() as conn:
                row = (await conn.execute(_RECORD, params)).first()
        if row is None:
            return None
        if exhausted:
            self.wake_relay()
        seq, kind = int(row.last_seq), str(row.kind or "external")
        # counted once committed: a rolled-back attempt is redelivered and counted then
        if seq == 1 and kind == "external":
            JOBS.labels(kind, "started").inc()
        if row.was in (None, "running") and row.status != "running":
            JOBS.labels(kind, row.status).inc()
            JOB_DURATION.labels(kind, row.status).observe(max(0.0, float(row.age)))
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
