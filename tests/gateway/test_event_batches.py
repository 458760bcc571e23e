"""The event log stores events in batches, on the real PostgreSQL: per-job sequence numbers
follow delivery order, each message id is stored once, a faulty event fails alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from services.gateway.event_batches import EventBatcher
from services.gateway.store import budgets, events, jobs
from services.gateway.streams import EventLog, StoredEvent
from shared.db import make_engine, make_sessionmaker
from shared.messaging import PermanentError
from shared.settings import get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def event_log(infra: dict[str, str]) -> AsyncIterator[EventLog]:
    settings = get_settings("gateway")
    engine = make_engine(settings)
    yield EventLog(make_sessionmaker(engine), settings)
    await engine.dispose()


def event(job_id: str, schema: str = "job.progress.v1", **extra: Any) -> dict[str, Any]:
    return {
        "message_id": str(uuid.uuid4()),
        "job_id": job_id,
        "correlation_id": job_id,
        "schema": schema,
        "payload": {},
        **extra,
    }


async def stored(event_log: EventLog, job_id: str) -> list[tuple[int, str]]:
    async with event_log.sessionmaker() as session:
        rows = await session.execute(
            select(events.c.seq, events.c.message_id)
            .where(events.c.job_id == job_id)
            .order_by(events.c.seq)
        )
        return [(int(r.seq), r.message_id) for r in rows]


async def test_a_batch_numbers_each_job_in_order_and_stores_each_id_once(
    event_log: EventLog,
) -> None:
    a, b = f"job-{uuid.uuid4()}", f"job-{uuid.uuid4()}"
    before = event(a)
    assert (await event_log.record(before)) == StoredEvent(a, 1, "job.progress", before)
    batch = [event(a), event(b), event(a), event(b), event(a)]
    copy = dict(batch[1])  # the same message twice in one batch (a duplicate delivery)
    results = await event_log.record_many([*batch, copy, before])  # and one stored before
    assert [(r.job_id, r.seq) if r else None for r in results] == [
        (a, 2), (b, 1), (a, 3), (b, 2), (a, 4), None, None,
    ]  # fmt: skip
    assert await stored(event_log, a) == [
        (1, before["message_id"]),
        (2, batch[0]["message_id"]),
        (3, batch[2]["message_id"]),
        (4, batch[4]["message_id"]),
    ]
    assert [m for _, m in await stored(event_log, b)] == [
        batch[1]["message_id"],
        batch[3]["message_id"],
    ]
    # the job rows count on from the batch
    assert (await event_log.record(event(b))).seq == 3  # type: ignore[union-attr]


async def test_a_final_event_in_a_batch_ends_its_job_and_usage_is_charged_once(
    event_log: EventLog,
) -> None:
    job_id, tenant = f"job-{uuid.uuid4()}", f"tenant-{uuid.uuid4()}"
    usage = event(
        job_id,
        "llm.call_completed.v1",
        tenant_id=tenant,
        payload={"input_tokens": 30, "output_tokens": 12, "task": "t", "model": "m"},
    )
    done = event(job_id, "course.ready.v1")
    after = event(job_id)
    results = await event_log.record_many([usage, usage, done, after])
    assert [r.seq if r else None for r in results] == [1, None, 2, 3]
    async with event_log.sessionmaker() as session:
        status = (
            await session.execute(select(jobs.c.status).where(jobs.c.job_id == job_id))
        ).scalar_one()
        used = (
            await session.execute(
                select(budgets.c.tokens_used).where(budgets.c.account.contains(tenant))
            )
        ).scalars().all()  # fmt: skip
    assert status == "completed"
    assert used == [42]


async def test_events_delivered_while_a_batch_commits_make_the_next_batch(
    event_log: EventLog,
) -> None:
    live: list[list[StoredEvent]] = []

    async def publish_live(batch: list[StoredEvent]) -> None:
        live.append(batch)

    batcher = EventBatcher(event_log, publish_live)
    job_id = f"job-{uuid.uuid4()}"
    bodies = [event(job_id) for _ in range(300)]
    # handlers run as tasks in delivery order; the tags say that order too
    results = await asyncio.gather(
        *(batcher.submit(body, tag) for tag, body in enumerate(bodies, 1))
    )
    assert [r.seq for r in results] == list(range(1, 301))  # type: ignore[union-attr]
    assert [m for _, m in await stored(event_log, job_id)] == [b["message_id"] for b in bodies]
    assert 2 <= batcher.batches < 10  # batched: not one transaction per event
    assert [e.seq for batch in live for e in batch] == list(range(1, 301))


async def test_a_faulty_event_fails_alone(event_log: EventLog) -> None:
    async def publish_live(batch: list[StoredEvent]) -> None:
        return None

    batcher = EventBatcher(event_log, publish_live)
    job_id = f"job-{uuid.uuid4()}"
    good = [event(job_id) for _ in range(5)]
    bad = event(job_id, payload={"text": "\x00 PostgreSQL keeps no NUL in jsonb"})
    outcomes = await asyncio.gather(
        *(batcher.submit(body, tag) for tag, body in enumerate([*good[:2], bad, *good[2:]], 1)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], Exception)
    assert [o.seq for i, o in enumerate(outcomes) if i != 2] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    with pytest.raises(PermanentError, match="job_id"):
        await batcher.submit({"message_id": "m", "schema": "job.progress.v1"})
