"""A pooled connection the database closed is replaced as it leaves the pool.

``make_engine`` checks each checkout locally (the asyncpg connection's closed flag)
instead of SQLAlchemy's three-round-trip ``pool_pre_ping``. After a PostgreSQL restart,
the first statement on the pool must still succeed: a lesson finishing just then is
stored, not failed, regenerated and billed again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_unavailable, make_engine
from shared.settings import LecternSettings
from tests.support.private_infra import PrivatePostgres, private_postgres

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres("pool") as pg:
        yield pg


async def _backend_pids(engine: AsyncEngine, connections: int) -> set[int]:
    """Check out ``connections`` at once (so none is reused) and return their server
    processes; the first statement to fail raises."""
    pids: list[int] = []
    all_in = asyncio.Event()

    async def one() -> None:
        async with engine.connect() as conn:
            pids.append((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            if len(pids) == connections:
                all_in.set()
            await all_in.wait()

    tasks = [asyncio.create_task(one()) for _ in range(connections)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return set(pids)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_after_a_database_restart_the_pool_hands_out_live_connections(
    postgres: PrivatePostgres, mode: str
) -> None:
    engine = make_engine(LecternSettings(database_url=postgres.url("pool")), pool_size=2)
    try:
        before = await _backend_pids(engine, 2)  # both pooled now
        postgres.stop(mode)  # a restart: every session ends
        postgres.start()
        await asyncio.sleep(0.2)  # the ends of the sockets reach the event loop
        after = await _backend_pids(engine, 2)  # no statement fails
        assert after.isdisjoint(before)
    finally:
        await engine.dispose()


async def test_without_the_check_a_closed_connection_fails_its_first_statement(
    postgres: PrivatePostgres,
) -> None:
    """The control: what the check prevents (and what callers without it must retry)."""
    engine = make_engine(
        LecternSettings(database_url=postgres.url("pool")), pool_size=1, pre_ping=False
    )
    try:
        await _backend_pids(engine, 1)
        postgres.stop("fast")
        postgres.start()
        await asyncio.sleep(0.2)
        with pytest.raises(DBAPIError) as failed:
            await _backend_pids(engine, 1)
        assert database_unavailable(failed.value)
    finally:
        await engine.dispose()
