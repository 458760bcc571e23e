"""A work lease survives a database restart: its holder keeps it, so a redelivery of the
same message waits instead of doing (and billing) the work a second time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from shared.db import WorkLease, make_sessionmaker, service_metadata
from tests.support.infra import reset_database
from tests.support.private_infra import PrivatePostgres

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        asyncio.run(reset_database(pg.pg, "lease"))
        yield pg
    finally:
        pg.cleanup()


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
