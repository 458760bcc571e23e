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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sse_starlette.event import ServerSentEvent

from services.gateway.budgets import charge
from services.gateway.store import events, jobs
from shared.db import autocommit, database_unavailable
from shared.messaging import PermanentError
from shared.metrics import JOB_DURATION, JOBS
from shared.settings import LecternSettings

log = logging.getLogger("lectern.gateway.streams")
DEFAULT_FINAL_EVENTS = ["course.ready", "job.failed"]
T = TypeVar("T")


@dataclass(frozen=True)
class StoredEvent:
    """One event of a job, as stored in the log."""

    job_id: str
    seq: int
    event: str
    body: dict[str, Any]

    @cached_property
    def sse(self) -> bytes:
        """The event as one Server-Sent Event (``id``, ``event``, ``data``), encoded
        once however many streams send it."""
        return ServerSentEvent(json.dumps(self.body), id=str(self.seq), event=self.event).encode()

    def to_wire(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "seq": self.seq, "event": self.event, "body": self.body}


def event_name(schema: str) -> str:
    """``course.plan_proposed.v1`` → ``course.plan_proposed``."""
    return schema.rsplit(".v", 1)[0] if ".v" in schema else schema


DATABASE_PATIENCE_S = 120.0


def check_event(body: dict[str, Any]) -> None:
    """An event the log can store, or a permanent error naming what is missing."""
    for name in ("job_id", "message_id", "schema"):
        value = body.get(name)
        if not isinstance(value, str) or not value or len(value) > 200:
            raise PermanentError(f"event without a valid {name}")


async def wait_for_database(
    store: Callable[[], Awaitable[T]], *, patience: float = DATABASE_PATIENCE_S
) -> T:
    """``store()``, tried again while PostgreSQL is unreachable (up to ``patience`` s).

    The log takes events in queue order. A failed event handed to the retry queue would
    come back behind later ones (chunks out of order, a ``course.ready`` before its last
    lesson) and be dead-lettered, gone from the log, after a few seconds of outage;
    holding it here keeps the queue waiting.
    """
    deadline = time.monotonic() + patience
    delay = 0.2
    while True:
        try:
            return await store()
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


# A batch (:meth:`EventLog.record_many`) in three statements whose text does not depend
# on the batch's size, so each is prepared once per connection: which message ids were
# stored before; every job's sequence advanced by its count of events (the job rows are
# the per-job sequencers, locked in job_id order so two batches cannot deadlock); the
# events themselves. (SQLAlchemy compiled a multi-row VALUES afresh for every batch:
# about 45 % of the batch's CPU.)
_SEEN = text(
    f"SELECT message_id FROM {events.fullname} WHERE message_id = ANY(CAST(:ids AS text[]))"
)
_ADVANCE_JOBS = text(
    f"""
INSERT INTO {jobs.fullname} AS j
    (job_id, user_id, tenant_id, kind, final_events, status, last_seq)
SELECT b.job_id, NULL, b.tenant_id, 'external', CAST(:default_final AS jsonb), 'running', b.n
FROM unnest(CAST(:job_ids AS text[]), CAST(:tenants AS text[]), CAST(:counts AS bigint[]))
    AS b(job_id, tenant_id, n)
ORDER BY b.job_id
ON CONFLICT (job_id) DO UPDATE SET last_seq = j.last_seq + excluded.last_seq
RETURNING j.job_id, j.last_seq, j.final_events, j.kind
"""
)
_INSERT_EVENTS = text(
    f"""
INSERT INTO {events.fullname} (job_id, seq, message_id, event, body)
SELECT e.job_id, e.seq, e.message_id, e.event, CAST(e.body AS jsonb)
FROM unnest(CAST(:job_ids AS text[]), CAST(:seqs AS bigint[]), CAST(:message_ids AS text[]),
    CAST(:events AS text[]), CAST(:bodies AS text[])) AS e(job_id, seq, message_id, event, body)
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
        self._autocommit = autocommit(writer or sessionmaker)
        self._writer_sessions = async_sessionmaker(writer) if writer else sessionmaker

    async def record(self, body: dict[str, Any]) -> StoredEvent | None:
        """Store one event; None when it was stored before (a redelivery).

        One statement (:data:`_RECORD`) does it all, in autocommit: one round trip per
        event, where a transaction of five statements took six. An ``llm.call_completed``
        is stored in a transaction with the charge of its tokens.
        """
        check_event(body)
        job_id, message_id, schema = body["job_id"], body["message_id"], body["schema"]
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
            # on the log's own connections too, like every other store
            async with self._writer_sessions() as session, session.begin():
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
        """:meth:`record`, waiting out a database outage in place (:func:`wait_for_database`)."""
        return await wait_for_database(lambda: self.record(body), patience=patience)

    async def record_many(self, bodies: list[dict[str, Any]]) -> list[StoredEvent | None]:
        """Store ``bodies`` in one transaction, in order; None for an event stored before.

        The same as :meth:`record` for each in turn: per job the sequence numbers follow
        the list's order, a message id is stored once (within the batch too), tokens are
        charged per stored ``llm.call_completed``, a final event ends its running job.
        """
        if len(bodies) == 1:
            return [await self.record(bodies[0])]
        for body in bodies:
            check_event(body)
        results: list[StoredEvent | None] = [None] * len(bodies)
        ended: list[tuple[str, str, float]] = []  # kind, outcome, seconds
        started: list[str] = []
        kinds: dict[str, str] = {}
        exhausted = False
        async with self._writer_sessions() as session, session.begin():
            found = await session.execute(_SEEN, {"ids": [b["message_id"] for b in bodies]})
            seen = set(found.scalars().all())
            fresh: list[int] = []
            for i, body in enumerate(bodies):
                if body["message_id"] not in seen:
                    seen.add(body["message_id"])
                    fresh.append(i)
            if not fresh:
                return results
            counts = Counter(bodies[i]["job_id"] for i in fresh)
            tenant: dict[str, Any] = {}
            for i in fresh:
                tenant.setdefault(bodies[i]["job_id"], bodies[i].get("tenant_id"))
            rows = await session.execute(
                _ADVANCE_JOBS,
                {
                    "job_ids": list(counts),
                    "tenants": [tenant[j] for j in counts],
                    "counts": list(counts.values()),
                    "default_final": _DEFAULT_FINAL_JSON,
                },
            )
            next_seq: dict[str, int] = {}
            finals: dict[str, list[str]] = {}
            for row in rows:
                next_seq[row.job_id] = int(row.last_seq) - counts[row.job_id] + 1
                finals[row.job_id] = list(row.final_events or [])
                kinds[row.job_id] = str(row.kind or "external")
                if next_seq[row.job_id] == 1 and kinds[row.job_id] == "external":
                    started.append(row.job_id)
            new: list[StoredEvent] = []
            for i in fresh:
                body = bodies[i]
                job_id = body["job_id"]
                seq = next_seq[job_id]
                next_seq[job_id] = seq + 1
                results[i] = StoredEvent(job_id, seq, event_name(body["schema"]), body)
                new.append(results[i])
            await session.execute(
                _INSERT_EVENTS,
                {
                    "job_ids": [e.job_id for e in new],
                    "seqs": [e.seq for e in new],
                    "message_ids": [e.body["message_id"] for e in new],
                    "events": [e.event for e in new],
                    "bodies": [json.dumps(e.body) for e in new],
                },
            )
            for i in fresh:
                body, stored = bodies[i], results[i]
                assert stored is not None
                if stored.event == "llm.call_completed":
                    exhausted = await charge(session, body, self.settings) or exhausted
                if stored.event in finals[stored.job_id]:
                    outcome = "failed" if stored.event == "job.failed" else "completed"
                    took = (
                        await session.execute(
                            update(jobs)
                            .where(jobs.c.job_id == stored.job_id, jobs.c.status == "running")
                            .values(status=outcome)
                            .returning(func.extract("epoch", func.now() - jobs.c.created_at))
                        )
                    ).first()
                    if took is not None:
                        ended.append((kinds[stored.job_id], outcome, max(0.0, float(took[0]))))
        if exhausted:
            self.wake_relay()
        # counted once committed: a rolled-back batch is redelivered and counted then
        for job_id in started:
            JOBS.labels(kinds[job_id], "started").inc()
        for kind, outcome, seconds in ended:
            JOBS.labels(kind, outcome).inc()
            JOB_DURATION.labels(kind, outcome).observe(seconds)
        return results

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
