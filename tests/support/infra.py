"""Fresh, isolated RabbitMQ virtual hosts and PostgreSQL databases (tests, benchmarks)."""

from __future__ import annotations

import shutil
import subprocess


def reset_vhost(vhost: str) -> None:
    """Delete and recreate ``vhost`` with full rights for guest."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise FileNotFoundError("rabbitmqctl not found: a local RabbitMQ is needed (make infra)")
    subprocess.run([ctl, "-q", "delete_vhost", vhost], capture_output=True, check=False)
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
