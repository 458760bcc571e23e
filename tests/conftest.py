"""Fixtures: the real RabbitMQ and PostgreSQL, isolated from a running `make run`.

Tests use their own database (``lectern_test``) and RabbitMQ virtual host
(``lectern-test``), both recreated at the start of the session, so the queues and
tables of a developer's running Lectern are never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PG = os.environ.get("LECTERN_TEST_PG", "postgres@127.0.0.1:5432")
TEST_DB = os.environ.get("LECTERN_TEST_DB", "lectern_test")
TEST_VHOST = os.environ.get("LECTERN_TEST_VHOST", "lectern-test")
DATABASE_URL = f"postgresql+asyncpg://{PG}/{TEST_DB}"
AMQP_BASE = os.environ.get("LECTERN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


def _amqp_url() -> str:
    return f"{AMQP_BASE}/{TEST_VHOST}"


def _reset_vhost() -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.exit("rabbitmqctl not found: the tests need a local RabbitMQ (make test sets it up)")
    subprocess.run([ctl, "-q", "delete_vhost", TEST_VHOST], capture_output=True, check=False)
    subprocess.run([ctl, "-q", "add_vhost", TEST_VHOST], check=True, capture_output=True)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", TEST_VHOST, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )


async def _reset_database() -> None:
    import asyncpg

    admin = await asyncpg.connect(f"postgresql://{PG}/postgres")
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            TEST_DB,
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
        await admin.execute(f'CREATE DATABASE "{TEST_DB}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    """A fresh test database (migrated) and virtual host; their URLs."""
    from shared.migrate import migrate

    _reset_vhost()
    asyncio.run(_reset_database())
    migrate(DATABASE_URL)
    env = {
        "DATABASE_URL": DATABASE_URL,
        "AMQP_URL": _amqp_url(),
        "LECTERN_ENVIRONMENT": "test",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    os.environ.update(env)
    return env
