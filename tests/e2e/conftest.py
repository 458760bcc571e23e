from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import DATABASE_URL
from tests.support.otlp import OtlpReceiver
from tests.support.processes import Cluster, make_cluster

PER_IP_LIMITS = ("GENERATE", "GRADE", "GUEST", "AUTH")


@pytest.fixture(scope="session")
def otlp() -> Iterator[OtlpReceiver]:
    """Where the cluster's services export their spans (OTLP/HTTP)."""
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def cluster(
    infra: dict[str, str], otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """All five services running as real processes on the test vhost and database."""
    log_dir = Path(tmp_path_factory.mktemp("service-logs"))
    # simulated model latency: parallel lessons must take about one lesson's time
    env = {
        **infra,
        "LECTERN_RETRY_BASE_DELAY_MS": "100",
        "LECTERN_OFFLINE_LATENCY_MS": "400",
        "LECTERN_ADMIN_EMAILS": '["admin@lectern.test"]',
        # every test calls from 127.0.0.1: per-address limits would count the whole suite
        # as one client (per-user limits stay at their defaults; test_rate_limits.py runs
        # its own gateway with low limits)
        **{f"LECTERN_RATE_LIMIT_{name}_IP": "1000000/hour" for name in PER_IP_LIMITS},
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export spans within 0.2 s
        "OTEL_BSP_MAX_QUEUE_SIZE": "200000",  # never drop a span of a busy test
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096",
    }
    cluster = make_cluster(env, log_dir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test database, to check what the services stored."""
    conn = await asyncpg.connect(DATABASE_URL.replace("+asyncpg", ""))
    try:
        yield conn
    finally:
        await conn.close()
