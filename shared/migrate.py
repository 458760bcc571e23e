"""Run every service's migrations: ``python -m shared.migrate [service ...]``.

Waits for the database (and creates it when missing), then applies each service's
Alembic revisions. A step before the services start, not a side effect of starting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from shared.settings import LecternSettings

SERVICES = ("gateway", "planner", "content", "assessment", "prompts")
ROOT = Path(__file__).resolve().parent.parent


def alembic_config(service: str, database_url: str) -> Config:
    """Alembic configuration for one service's migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


async def ensure_database(database_url: str, timeout: float = 60.0) -> None:
    """Wait until PostgreSQL answers, and create the database if it does not exist."""
    import asyncpg

    url = make_url(database_url)
    dsn = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            break
        except (OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"PostgreSQL at {url.host}:{url.port} is not reachable: {exc}"
                ) from exc
            await asyncio.sleep(1)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{url.database}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()


def migrate(database_url: str, services: tuple[str, ...] = SERVICES) -> None:
    """Create the database if needed and upgrade each service's schema to head."""
    asyncio.run(ensure_database(database_url))
    for service in services:
        command.upgrade(alembic_config(service, database_url), "head")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("services", nargs="*", help=f"default: all of {', '.join(SERVICES)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}")
    services = tuple(args.services) or SERVICES
    migrate(LecternSettings().database_url, services)
    print(f"migrations applied: {', '.join(services)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
