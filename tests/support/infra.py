"""Fresh, isolated RabbitMQ virtual hosts and PostgreSQL databases (tests, benchmarks)."""

from __future__ import annotations

import shutil
import subprocess


def _rabbitmqctl() -> str:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise FileNotFoundError("rabbitmqctl not found: a local RabbitMQ is needed (make infra)")
    return ctl


def drop_vhost(vhost: str) -> None:
    """Delete ``vhost`` (with its exchanges and queues), if it is there."""
    subprocess.run([_rabbitmqctl(), "-q", "delete_vhost", vhost], capture_output=True, check=False)


def reset_vhost(vhost: str) -> None:
    """Delete and recreate ``vhost`` with full rights for guest."""
    ctl = _rabbitmqctl()
    drop_vhost(vhost)
    subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        [ctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )


async def reset_database(pg: str, name: str) -> None:
    """Drop and recreate database ``name`` on ``pg`` (``user@host:port``)."""
    import asyncpg

    admin = await asyncpg.connect(f"postgresql://{pg}/postgres")
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


BENCH_DB, BENCH_VHOST = "lectern_bench", "lectern-bench"


def fresh_bench_env(pg: str = "postgres@127.0.0.1:5432", **extra: str) -> dict[str, str]:
    """A fresh, migrated benchmark database and virtual host; the services' environment.

    Synchronous: call it before starting an event loop.
    """
    import asyncio

    from shared.migrate import migrate

    reset_vhost(BENCH_VHOST)
    asyncio.run(reset_database(pg, BENCH_DB))
    database_url = f"postgresql+asyncpg://{pg}/{BENCH_DB}"
    migrate(database_url)
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{BENCH_VHOST}",
        "LECTERN_ENVIRONMENT": "test",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LECTERN_LOG_LEVEL": "WARNING",
        **extra,
    }
