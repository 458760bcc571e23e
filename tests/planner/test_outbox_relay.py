"""The outbox relay on the real PostgreSQL and RabbitMQ: what goes out, in which order.

Events go out one at a time in outbox order (the gateway's event log numbers a job's
events in arrival order); a run of consecutive commands goes out at once, so a finalised
course's lesson commands do not wait for each other's confirm.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker, RabbitQueue
from sqlalchemy import delete, insert, select

from services.planner.store import metadata
from shared.broker import make_broker
from shared.contracts.base import COMMANDS_EXCHANGE, EVENTS_EXCHANGE
from shared.db import make_engine, make_sessionmaker
from shared.migrate import migrate
from shared.outbox import OutboxRelay, outbox_table
from shared.settings import get_settings
from shared.topology import commands_exchange, events_exchange
from tests.conftest import PG, TEST_DB
from tests.support.infra import reset_database

OUTBOX = outbox_table(metadata)
KEY = "test.outbox-relay"


class Recording:
    """A publisher for one destination that counts how many of its publishes overlap."""

    def __init__(self, broker: RabbitBroker, exchange: Any, fail: set[str]) -> None:
        self.broker, self.exchange, self.fail = broker, exchange, fail
        self.in_flight = 0
        self.most_at_once = 0

    async def publish(self, body: dict[str, Any], **kwargs: Any) -> None:
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            if kwargs["message_id"] in self.fail:
                await asyncio.sleep(0.01)
                raise ConnectionError("broker gone")
            await self.broker.publish(body, exchange=self.exchange, routing_key=KEY, **kwargs)
        finally:
            self.in_flight -= 1


@pytest.fixture(scope="module")
def outbox_db(infra: dict[str, str]) -> str:
    """A database of this module's own: the suite's services (the e2e cluster's planner
    runs all session) share the test database, and their relay and outbox rows would
    mix with the ones these tests count."""
    url = f"postgresql+asyncpg://{PG}/{TEST_DB}_outbox"
    asyncio.run(reset_database(PG, f"{TEST_DB}_outbox"))
    migrate(url, ("planner",))
    return url


@pytest.fixture
async def setup(outbox_db: str) -> AsyncIterator[dict[str, Any]]:
    settings = get_settings("planner").model_copy(update={"database_url": outbox_db})
    engine = make_engine(settings)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(OUTBOX))
    broker = make_broker(settings)
    name = f"test.outbox-relay.{uuid.uuid4().hex[:8]}"
    queue = RabbitQueue(name, auto_delete=True, routing_key=KEY)
    received: list[str] = []

    @broker.subscriber(queue, commands_exchange)
    async def from_commands(body: dict[str, Any]) -> None:
        received.append(body["name"])

    events_queue = RabbitQueue(name + ".events", auto_delete=True, routing_key=KEY)

    @broker.subscriber(events_queue, events_exchange)
    async def from_events(body: dict[str, Any]) -> None:
        received.append(body["name"])

    await broker.start()
    fail: set[str] = set()
    publishers = {
        "test.command": Recording(broker, commands_exchange, fail),
        "test.event": Recording(broker, events_exchange, fail),
    }
    relay = OutboxRelay(sessionmaker, metadata, broker, publishers)
    yield {
        "sessionmaker": sessionmaker,
        "relay": relay,
        "publishers": publishers,
        "received": received,
        "fail": fail,
    }
    await broker.stop()
    await engine.dispose()


async def enqueue(sessionmaker: Any, names: list[str]) -> dict[str, str]:
    """One transaction of outbox rows: ``cmd*`` names are commands, the rest events."""
    ids = {}
    async with sessionmaker() as session, session.begin():
        for name in names:
            command = name.startswith("cmd")
            ids[name] = str(uuid.uuid4())
            await session.execute(
                insert(OUTBOX).values(
                    message_id=ids[name],
                    schema="test.command" if command else "test.event",
                    exchange=COMMANDS_EXCHANGE if command else EVENTS_EXCHANGE,
                    routing_key=KEY,
                    body={"name": name},
                    headers={},
                )
            )
    return ids


async def published(sessionmaker: Any) -> set[str]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(OUTBOX.c.body).where(OUTBOX.c.published_at.is_not(None))
        )
    return {(b if isinstance(b, dict) else json.loads(b))["name"] for (b,) in rows}


async def arrived(received: list[str], count: int) -> list[str]:
    for _ in range(200):
        if len(received) >= count:
            break
        await asyncio.sleep(0.02)
    return list(received)


COMMANDS = [f"cmd-{i}" for i in range(8)]


async def test_commands_go_out_together_and_events_keep_their_place(
    setup: dict[str, Any],
) -> None:
    names = ["finalised", *COMMANDS, "progress", "ready"]
    await enqueue(setup["sessionmaker"], names)
    assert await setup["relay"].publish_pending() == len(names)
    assert await published(setup["sessionmaker"]) == set(names)
    assert setup["publishers"]["test.command"].most_at_once == len(COMMANDS)
    assert setup["publishers"]["test.event"].most_at_once == 1
    order = await arrived(setup["received"], len(names))
    assert sorted(order) == sorted(names)
    # the event before the commands was confirmed before any of them went out, and the
    # events after them only once all were confirmed
    assert order[0] == "finalised"
    assert order[-2:] == ["progress", "ready"]


async def test_a_failed_command_is_retried_alone_and_what_follows_waits(
    setup: dict[str, Any],
) -> None:
    names = ["finalised", *COMMANDS, "progress"]
    ids = await enqueue(setup["sessionmaker"], names)
    setup["fail"].add(ids["cmd-3"])
    with pytest.raises(ConnectionError):
        await setup["relay"].publish_pending()
    # the rest of the group went out and is marked; the failed one and the event after
    # the group were not
    assert await published(setup["sessionmaker"]) == {"finalised", *COMMANDS} - {"cmd-3"}
    setup["fail"].clear()
    assert await setup["relay"].publish_pending() == 2
    assert await published(setup["sessionmaker"]) == set(names)
    order = await arrived(setup["received"], len(names))
    assert sorted(order) == sorted(names)  # each once: nothing went out twice
    assert order[-2:] == ["cmd-3", "progress"]
