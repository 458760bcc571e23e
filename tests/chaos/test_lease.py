"""A work lease survives a database restart: its holder keeps it, so a redelivery of the
same message waits instead of doing (and billing) the work a second time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from shared.contracts.base import Message
from shared.contracts.planner import PlanCourse
from shared.db import WorkLease, lease_taken_after_ms, make_sessionmaker, service_metadata
from shared.streaming import ChunkStreamer
from tests.support.private_infra import PrivatePostgres, private_postgres

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres("lease") as pg:
        yield pg


async def test_a_lease_outlives_a_database_restart(postgres: PrivatePostgres) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    metadata = service_metadata("lease")
    engine = create_async_engine(postgres.url("lease"), pool_pre_ping=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA lease"))
            await conn.run_sync(metadata.create_all)
        sessions = make_sessionmaker(engine)
        holder = WorkLease(sessions, metadata, "c", "m-1", lease_s=1.5)  # renewed every 0.5 s
        assert await holder.acquire()
        await asyncio.to_thread(postgres.restart, 1.0)  # renewals fail while it is down
        await asyncio.sleep(2.0)  # longer than the lease: only renewals keep it

        second = WorkLease(sessions, metadata, "c", "m-1", lease_s=1.5)
        with pytest.raises(TimeoutError):  # busy: the holder still has it
            await asyncio.wait_for(second.acquire(poll_s=0.2), 2.0)
        await holder.release()
        assert await asyncio.wait_for(second.acquire(poll_s=0.2), 5.0)  # free now
        await second.release()
    finally:
        await engine.dispose()


async def test_many_leases_are_renewed_together_and_a_released_one_is_not(
    postgres: PrivatePostgres,
) -> None:
    """A worker holding many leases renews them all (one statement per interval, not one
    transaction per lease); one released meanwhile stays free for its retry."""
    from sqlalchemy import event
    from sqlalchemy.ext.asyncio import create_async_engine

    metadata = service_metadata("many")
    engine = create_async_engine(postgres.url("lease"), pool_pre_ping=True)
    updates: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("UPDATE"):
            updates.append(statement)

    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA many"))
            await conn.run_sync(metadata.create_all)
        sessions = make_sessionmaker(engine)
        holders = [WorkLease(sessions, metadata, "c", f"m-{i}", lease_s=1.2) for i in range(50)]
        assert all(await asyncio.gather(*(h.acquire() for h in holders)))
        await holders[0].release()
        released = len(updates)
        await asyncio.sleep(2.0)  # longer than the lease: only renewals keep the others
        renewals = len(updates) - released
        assert 1 <= renewals <= 6, renewals  # every 0.4 s, all 50 at once
        async with sessions() as session:
            live = await session.scalar(
                text("SELECT count(*) FROM many.processed_messages WHERE lease_until > now()")
            )
        assert live == 49  # all held but the released one
        again = WorkLease(sessions, metadata, "c", "m-0", lease_s=1.2)
        assert await asyncio.wait_for(again.acquire(poll_s=0.1), 1.0)  # free at once
        await asyncio.gather(again.release(), *(h.release() for h in holders[1:]))
    finally:
        await engine.dispose()


async def test_a_later_holder_streams_higher_attempts(postgres: PrivatePostgres) -> None:
    """Each holder of a message's lease numbers its chunks above every earlier holder's,
    an identical copy of the message too (same id, same headers: delivery 0 again)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    metadata = service_metadata("numbers")
    engine = create_async_engine(postgres.url("lease"), pool_pre_ping=True)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA numbers"))
            await conn.run_sync(metadata.create_all)
        sessions = make_sessionmaker(engine)
        firsts: list[int] = []
        for _ in range(3):  # the original, its retry, an identical copy: all "delivery 0"
            lease = WorkLease(sessions, metadata, "c", "m-1")
            async with lease as ours:
                assert ours
                streamer = ChunkStreamer(publish, origin(), step="lesson:1", delivery=0)
                await streamer.on_attempt(1)
                firsts.append(streamer.attempt)
            assert lease_taken_after_ms.get() is None  # only while the lease is held
            await asyncio.sleep(0.01)
        assert firsts[0] == 1  # the first holder streams attempt 1, as ever
        assert firsts == sorted(set(firsts)), firsts  # and every later one above it
        assert firsts[1] - firsts[0] >= ChunkStreamer.ATTEMPTS_PER_DELIVERY
        # without a lease (tests, tools) the delivery ordinal still numbers them
        assert ChunkStreamer(publish, origin(), step="s", delivery=2).attempt == 201
    finally:
        await engine.dispose()


async def publish(chunk: object) -> None:
    return None


def origin() -> Message:
    return PlanCourse(
        job_id="j", correlation_id="j",
        payload={"course_id": "c", "topic": "Leases", "level": "beginner", "duration_hours": 2},
    )  # fmt: skip
