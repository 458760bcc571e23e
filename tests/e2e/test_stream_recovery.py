"""A fan-out message lost while the gateway's broker connection was down reaches its stream.

Every gateway replica gets stored events through an exclusive live queue, which goes
away with its connection: what is stored meanwhile is never fanned out to it. Its
open streams no longer poll the log; once the connection is back, one check finds
the streams that are behind and they read what they missed. Replicas fan out to each
other only once they have met, and a replica alone publishes nothing but its hellos.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import httpx
import pytest

from services.gateway.auth import Principal, issue_token
from shared.settings import DEV_JWT_SECRET
from tests.support.client import publish_command
from tests.support.infra import drop_vhost, reset_vhost
from tests.support.processes import Service, free_port

pytestmark = pytest.mark.e2e


def close_broker_connections(pid: int, vhost: str) -> int:
    """Close the AMQP connections of process ``pid`` from the broker's side."""
    sockets = subprocess.run(
        ["ss", "-tnpH", "state", "established", "( dport = :5672 )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ports = {
        line.split()[2].rsplit(":", 1)[1] for line in sockets.splitlines() if f"pid={pid}," in line
    }
    connections = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "-p", vhost, "pid", "name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    closed = 0
    for line in connections:
        conn_pid, _, name = line.partition("\t")
        match = re.match(r"\S+:(\d+) -> ", name)
        if match and match.group(1) in ports:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", conn_pid, "test: connection lost"],
                check=True,
                capture_output=True,
            )
            closed += 1
    return closed


async def running_job(db: asyncpg.Connection, user_id: str) -> str:
    """A new running job of ``user_id``, as the gateway records one; its id."""
    job_id = f"j-{uuid.uuid4().hex[:12]}"
    await db.execute(
        "INSERT INTO gateway.jobs (job_id, user_id, tenant_id, kind, final_events, status,"
        " last_seq) VALUES ($1, $2, 'default', 'test', '[\"job.failed\"]', 'running', 0)",
        job_id,
        user_id,
    )
    return job_id


def guest(user_id: str) -> str:
    """A token of a guest ``user_id``."""
    principal = Principal(user_id=user_id, tenant_id="default", role="learner", is_guest=True)
    return issue_token(DEV_JWT_SECRET, principal)


async def collect_ids(client: httpx.AsyncClient, url: str, token: str, ids: list[str]) -> None:
    """The ids of the stream's events, as they come, until two have."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with client.stream("GET", url, headers=headers, timeout=60) as resp:
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if line.startswith("id:"):
                ids.append(line[3:].strip())
                if len(ids) == 2:
                    return


async def read_when_open(
    client: httpx.AsyncClient, gateway_url: str, job_id: str, token: str, ids: list[str]
) -> asyncio.Task[None]:
    """Read the job's stream on ``gateway_url`` into ``ids`` (a task), once the gateway
    counts it open."""
    task = asyncio.create_task(
        collect_ids(client, f"{gateway_url}/v1/jobs/{job_id}/events", token, ids)
    )
    deadline = time.monotonic() + 10
    while await open_streams(gateway_url) < 1:
        assert time.monotonic() < deadline, "the stream did not open"
        await asyncio.sleep(0.1)
    return task


async def open_streams(url: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{url}/metrics")).text
    found = re.search(r"^lectern_sse_open_streams (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_an_event_whose_fan_out_was_lost_arrives_after_the_reconnect(
    infra: dict[str, str], db: asyncpg.Connection, tmp_path: Path
) -> None:
    gateway = Service("gateway", free_port(), dict(infra), tmp_path / "gateway.log")
    gateway.start()
    try:
        gateway.wait_ready()
        assert gateway.proc is not None
        user_id = f"u-{uuid.uuid4().hex[:12]}"
        token = guest(user_id)
        job_id = await running_job(db, user_id)
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            ids: list[str] = []
            reading = await read_when_open(client, gateway.url, job_id, token, ids)

            # the connection drops; meanwhile an event is stored and its fan-out is lost
            assert close_broker_connections(gateway.proc.pid, infra["AMQP_URL"].rsplit("/", 1)[1])
            body = {"message_id": str(uuid.uuid4()), "job_id": job_id, "schema": "job.chunk.v1"}
            async with db.transaction():
                await db.execute(
                    "INSERT INTO gateway.events (job_id, seq, message_id, event, body)"
                    " VALUES ($1, 1, $2, 'job.chunk', $3::jsonb)",
                    job_id,
                    body["message_id"],
                    json.dumps(body),
                )
                await db.execute("UPDATE gateway.jobs SET last_seq = 1 WHERE job_id = $1", job_id)

            # reconnected (aio-pika retries every 5 s): the stream reads it from the log,
            # long before the safety-net check (every 45-75 s)
            started = time.monotonic()
            while ids != ["1"]:
                assert time.monotonic() - started < 20, gateway.log_tail()
                assert not reading.done(), reading
                await asyncio.sleep(0.2)

            # and live fan-out works again on the new queue
            await publish_command(
                infra["AMQP_URL"],
                {**body, "message_id": str(uuid.uuid4()), "payload": {}},
                routing_key="job.chunk",
                exchange_name="lectern.events",
            )
            await asyncio.wait_for(reading, 20)
        assert ids == ["1", "2"]
    finally:
        gateway.stop()


async def test_streams_end_when_their_client_goes_and_when_the_gateway_stops(
    infra: dict[str, str], db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A real gateway process: a client that goes away frees its stream; on SIGTERM the
    open streams end cleanly and the process exits (uvicorn waits for open responses)."""
    gateway = Service("gateway", free_port(), dict(infra), tmp_path / "gateway.log")
    gateway.start()
    try:
        gateway.wait_ready()
        assert gateway.proc is not None
        user_id = f"u-{uuid.uuid4().hex[:12]}"
        token = guest(user_id)
        job_ids = [await running_job(db, user_id) for _ in range(3)]
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}

        async def read_to_end(client: httpx.AsyncClient, job_id: str) -> bytes:
            url = f"/v1/jobs/{job_id}/events"
            async with client.stream("GET", url, headers=headers, timeout=60) as resp:
                assert resp.status_code == 200
                return b"".join([chunk async for chunk in resp.aiter_bytes()])

        async def wait_open(n: int) -> None:
            deadline = time.monotonic() + 10
            while await open_streams(gateway.url) != n:
                assert time.monotonic() < deadline, f"not {n} open streams"
                await asyncio.sleep(0.1)

        async with httpx.AsyncClient(base_url=gateway.url) as client:
            readers = [asyncio.create_task(read_to_end(client, j)) for j in job_ids]
            await wait_open(3)
            readers[0].cancel()  # this client goes away
            await wait_open(2)

            stopped = time.monotonic()
            gateway.proc.send_signal(signal.SIGTERM)
            bodies = await asyncio.wait_for(asyncio.gather(*readers[1:]), 10)
            assert bodies == [b"", b""]  # ended, nothing half-sent
            await asyncio.to_thread(gateway.proc.wait, 15)
        assert time.monotonic() - stopped < 10, gateway.log_tail()
        # uvicorn raises the SIGTERM it handled again once shut down (shared/runtime.py)
        assert gateway.proc.returncode in (0, -signal.SIGTERM), gateway.log_tail()
        log = gateway.log_tail(200)
        assert "closed 2 open streams" in log and "Application shutdown complete" in log
    finally:
        gateway.stop()


async def test_streams_on_every_replica_get_an_event_one_replica_stored(
    infra: dict[str, str], db: asyncpg.Connection, tmp_path: Path
) -> None:
    """One replica at a time stores events (the log's queue has a single active consumer):
    its own streams get them from it directly, the others' through the live exchange,
    long before the safety-net check (45-75 s) would find them."""
    replicas = [
        Service("gateway", free_port(), dict(infra), tmp_path / f"gateway-{i}.log")
        for i in range(2)
    ]
    for gateway in replicas:  # one after the other: the first is the log's consumer
        gateway.start()
        gateway.wait_ready()
    try:
        user_id = f"u-{uuid.uuid4().hex[:12]}"
        token = guest(user_id)
        job_id = await running_job(db, user_id)
        ids: list[list[str]] = [[], []]
        async with httpx.AsyncClient() as client:
            readers = [
                asyncio.create_task(
                    collect_ids(client, f"{g.url}/v1/jobs/{job_id}/events", token, ids[i])
                )
                for i, g in enumerate(replicas)
            ]
            deadline = time.monotonic() + 10
            for gateway in replicas:
                while await open_streams(gateway.url) < 1:
                    assert time.monotonic() < deadline, "a stream did not open"
                    await asyncio.sleep(0.1)
            for _ in range(2):
                await publish_command(
                    infra["AMQP_URL"],
                    {"message_id": str(uuid.uuid4()), "job_id": job_id, "schema": "job.chunk.v1"},
                    routing_key="job.chunk",
                    exchange_name="lectern.events",
                )
            await asyncio.wait_for(asyncio.gather(*readers), 10)
        assert ids == [["1", "2"], ["1", "2"]]
    finally:
        for gateway in replicas:
            gateway.stop()


async def test_a_gateway_alone_publishes_hellos_but_no_batches_until_another_replica_joins(
    infra: dict[str, str], db: asyncpg.Connection, tmp_path: Path
) -> None:
    """With no other replica, stored events go to the replica's own streams and nowhere
    else; a second replica is greeted, and from then on batches go out for it. On a
    virtual host of its own: the suite's other gateways would be replicas too."""
    vhost = f"lectern-test-alone-{uuid.uuid4().hex[:8]}"
    reset_vhost(vhost)
    amqp_url = f"{infra['AMQP_URL'].rsplit('/', 1)[0]}/{vhost}"
    env = {**infra, "AMQP_URL": amqp_url}
    first = Service("gateway", free_port(), env, tmp_path / "gateway-0.log")
    second: Service | None = None
    first.start()
    connection: aio_pika.abc.AbstractConnection | None = None
    try:
        first.wait_ready()
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        probe = await channel.declare_queue(exclusive=True)
        await probe.bind("lectern.gateway.live")
        seen: list[dict] = []

        async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            seen.append(json.loads(message.body))

        await probe.consume(take, no_ack=True)
        user_id = f"u-{uuid.uuid4().hex[:12]}"
        token = guest(user_id)
        job_id = await running_job(db, user_id)

        async def chunk() -> None:
            await publish_command(
                amqp_url,
                {"message_id": str(uuid.uuid4()), "job_id": job_id, "schema": "job.chunk.v1"},
                routing_key="job.chunk",
                exchange_name="lectern.events",
            )

        def batches() -> list[int]:
            return [e["seq"] for m in seen if not m.get("hello") for e in m["events"]]

        ids: list[str] = []
        async with httpx.AsyncClient() as client:
            reader = await read_when_open(client, first.url, job_id, token, ids)
            deadline = time.monotonic() + 10
            await chunk()
            while ids != ["1"]:
                assert time.monotonic() < deadline, f"the stream got {ids}"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # time for a batch to reach the probe, were one sent
            assert batches() == []  # alone: nothing published but its hello

            second = Service("gateway", free_port(), dict(env), tmp_path / "gateway-1.log")
            second.start()
            second.wait_ready()
            names = {m["replica"] for m in seen if m.get("hello")}
            while len(names) < 2:  # the first greets the second, which greets back
                assert time.monotonic() < deadline + 20, f"hellos seen: {seen}"
                await asyncio.sleep(0.05)
                names = {m["replica"] for m in seen if m.get("hello")}
            await chunk()
            await asyncio.wait_for(reader, 10)
            assert ids == ["1", "2"]
            while batches() != [2]:  # the storing replica now publishes for the other
                assert time.monotonic() < deadline + 30, f"live messages: {seen}"
                await asyncio.sleep(0.05)
    finally:
        if connection is not None:
            await connection.close()
        first.stop()
        if second is not None:
            second.stop()
        drop_vhost(vhost)
