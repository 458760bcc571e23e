"""Fixtures: the real RabbitMQ and PostgreSQL, isolated from a running `make run`.

Tests use their own database (``lectern_test``) and RabbitMQ virtual host
(``lectern-test``), both recreated at the start of the session, so the queues and
tables of a developer's running Lectern are never touched.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.infra import reset_database, reset_vhost

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PG = os.environ.get("LECTERN_TEST_PG", "postgres@127.0.0.1:5432")
TEST_DB = os.environ.get("LECTERN_TEST_DB", "lectern_test")
TEST_VHOST = os.environ.get("LECTERN_TEST_VHOST", "lectern-test")
DATABASE_URL = f"postgresql+asyncpg://{PG}/{TEST_DB}"
AMQP_BASE = os.environ.get("LECTERN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")


def _amqp_url() -> str:
    return f"{AMQP_BASE}/{TEST_VHOST}"


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    """A fresh test database (migrated) and virtual host; their URLs."""
    from shared.migrate import migrate

    try:
        reset_vhost(TEST_VHOST)
    except FileNotFoundError as exc:
        pytest.exit(str(exc))
    asyncio.run(reset_database(PG, TEST_DB))
    migrate(DATABASE_URL)
    env = {
        "DATABASE_URL": DATABASE_URL,
        "AMQP_URL": _amqp_url(),
        "LECTERN_ENVIRONMENT": "test",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    os.environ.update(env)
    return env
