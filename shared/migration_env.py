"""The body of every service's Alembic ``env.py``: async, one schema per service.

Each service keeps its own revisions in ``services/<name>/migrations/versions`` and its
own version table inside its schema. An advisory lock makes concurrent runs (several
replicas starting at once) apply each revision once.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_LOCK_ID = 7_420_001


def _run(connection: Connection, metadata: MetaData) -> None:
    schema = metadata.schema
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(metadata: MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"SELECT pg_advisory_lock({_LOCK_ID})"))
            try:
                await conn.run_sync(_run, metadata)
                await conn.commit()
            finally:
                await conn.execute(text(f"SELECT pg_advisory_unlock({_LOCK_ID})"))
                await conn.commit()
    finally:
        await engine.dispose()


def run_migrations(metadata: MetaData) -> None:
    """Apply pending revisions for the service owning ``metadata``."""
    if context.is_offline_mode():
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            version_table_schema=metadata.schema,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_async(metadata))
