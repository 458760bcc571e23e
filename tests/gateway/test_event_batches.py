"""The event log stores events in batches, on the real PostgreSQL: per-job sequence numbers
follow delivery order (whatever order the handlers reach the batcher in, across a broker
reconnect too), each message id is stored once, a faulty event fails alone."""

from __future__ import annotations

import asyncio
import random
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


async def test_a_batch_makes_the_job_rows_of_external_jobs_and_keeps_known_ones(
    event_log: EventLog,
) -> None:
    known = f"job-{uuid.uuid4()}"
    async with event_log.sessionmaker() as session, session.begin():
        await session.execute(
            jobs.insert().values(
                job_id=known, user_id="u", tenant_id="t-known", kind="course",
                final_events=["course.ready"], status="running", last_seq=4,
            )
        )  # fmt: skip
    # many jobs in one batch, in no particular order, some with tenants and some without
    fresh = [f"job-{uuid.uuid4()}" for _ in range(150)]
    batch = [event(j, tenant_id=f"t-{n}" if n % 3 else None) for n, j in enumerate(fresh)]
    batch += [event(known, tenant_id="t-other"), event(fresh[7]), event(known)]
    results = await event_log.record_many(batch)
    assert [r.seq if r else None for r in results] == [1] * 150 + [5, 2, 6]
    async with event_log.sessionmaker() as session:
        rows = {
            r.job_id: r
            for r in await session.execute(select(jobs).where(jobs.c.job_id.in_([*fresh, known])))
        }
    assert (rows[known].kind, rows[known].tenant_id, rows[known].last_seq) == (
        "course", "t-known", 6,
    )  # fmt: skip
    assert rows[known].final_events == ["course.ready"]
    for n, j in enumerate(fresh):
        row = rows[j]
        assert (row.kind, row.status, row.user_id) == ("external", "running", None)
        assert row.tenant_id == (f"t-{n}" if n % 3 else None)
        assert row.final_events == ["course.ready", "job.failed"]
        assert row.last_seq == (2 if n == 7 else 1)
    assert [m for _, m in await stored(event_log, fresh[7])] == [
        batch[7]["message_id"],
        batch[151]["message_id"],
    ]


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
    channel = object()
    # the handlers reach the batcher in any order; the tags say the delivery order
    calls = [batcher.submit(body, tag, channel) for tag, body in enumerate(bodies, 1)]
    order = list(range(300))
    random.Random(7).shuffle(order)
    tasks = {i: asyncio.ensure_future(calls[i]) for i in order}
    results = await asyncio.gather(*(tasks[i] for i in range(300)))
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
    channel = object()
    outcomes = await asyncio.gather(
        *(
            batcher.submit(body, tag, channel)
            for tag, body in enumerate([*good[:2], bad, *good[2:]], 1)
        ),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], Exception)
    assert [o.seq for i, o in enumerate(outcomes) if i != 2] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]
    with pytest.raises(PermanentError, match="job_id"):
        await batcher.submit({"message_id": "m", "schema": "job.progress.v1"}, 6, channel)


async def test_after_a_reconnect_the_old_channel_goes_first_whatever_the_tags(
    event_log: EventLog,
) -> None:
    """Tags start again at 1 on the channel after a reconnect: the deliveries of the old
    channel still waiting are stored before the new channel's, not mixed by tag."""

    async def publish_live(batch: list[StoredEvent]) -> None:
        return None

    batcher = EventBatcher(event_log, publish_live)
    job_id = f"job-{uuid.uuid4()}"
    old, new = object(), object()
    first = [event(job_id) for _ in range(3)]
    await asyncio.gather(*(batcher.submit(b, tag, old) for tag, b in enumerate(first, 1)))
    # tags 4 and 5 of the old channel reach the batcher late, after the new channel's
    # first deliveries (tag 1: tag 4 again, as the broker redelivers it; tag 2: newer)
    late = [event(job_id), event(job_id)]
    newer = event(job_id)
    tasks = [
        asyncio.ensure_future(batcher.submit(dict(late[0]), 1, new)),
        asyncio.ensure_future(batcher.submit(newer, 2, new)),
    ]
    await asyncio.sleep(0)
    tasks += [
        asyncio.ensure_future(batcher.submit(b, tag, old))
        for tag, b in ((4, late[0]), (5, late[1]))
    ]
    await asyncio.gather(*tasks)
    assert [m for _, m in await stored(event_log, job_id)] == [
        b["message_id"] for b in [*first, *late, newer]
    ]


async def test_a_delivery_that_never_arrives_holds_the_log_only_briefly(
    event_log: EventLog,
) -> None:
    """A message whose handler never ran (it did not decode) leaves a gap in the tags:
    the batcher waits for it, then goes on."""

    async def publish_live(batch: list[StoredEvent]) -> None:
        return None

    batcher = EventBatcher(event_log, publish_live, gap_wait=0.3)
    job_id = f"job-{uuid.uuid4()}"
    channel = object()
    bodies = [event(job_id) for _ in range(4)]
    await batcher.submit(bodies[0], 1, channel)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # tag 2 never comes
    results = await asyncio.gather(
        *(batcher.submit(b, tag, channel) for tag, b in ((3, bodies[1]), (4, bodies[2])))
    )
    waited = loop.time() - started
    assert [r.seq for r in results] == [2, 3]  # type: ignore[union-attr]
    assert 0.25 <= waited < 2.0 and batcher.gaps == 1
    # and the tags after it are stored at once
    assert (await batcher.submit(bodies[3], 5, channel)).seq == 4  # type: ignore[union-attr]
