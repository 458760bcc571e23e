"""Database plumbing: async engine, a schema per service, idempotent consumption.

Each service owns one PostgreSQL schema (named after the service) and its tables;
the platform tables every service has (``processed_messages``, ``outbox``) are added
to its metadata by :func:`service_metadata`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.settings import LecternSettings

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


def make_engine(settings: LecternSettings) -> AsyncEngine:
    """An async engine on ``settings.database_url`` with a bounded pool."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (we publish after commit)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def service_metadata(schema: str) -> MetaData:
    """Metadata for a service's schema, with the platform tables already in it."""
    metadata = MetaData(schema=schema, naming_convention=NAMING)
    Table(
        "processed_messages",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("message_id", String(200), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column("message_id", String(200), nullable=False, unique=True),
        Column("schema", String(200), nullable=False),
        Column("exchange", String(200), nullable=False),
        Column("routing_key", String(200), nullable=False),
        Column("body", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
    )
    Index(
        "ix_outbox_pending",
        outbox.c.id,
        postgresql_where=outbox.c.published_at.is_(None),
    )
    return metadata


async def already_processed(
    conn: AsyncConnection | AsyncSession, metadata: MetaData, consumer: str, message_id: str
) -> bool:
    """Whether ``consumer`` has recorded ``message_id`` (a cheap check before costly work)."""
    table = metadata.tables[f"{metadata.schema}.processed_messages"]
    row = await conn.execute(
        table.select().where(table.c.consumer == consumer, table.c.message_id == message_id)
    )
    return row.first() is not None


async def claim_message(
    conn: AsyncConnection | AsyncSession, metadata: MetaData, consumer: str, message_id: str
) -> bool:
    """Record ``(consumer, message_id)`` in the caller's transaction.

    Returns False when it was already recorded: the message is a redelivery and the
    caller must skip its effects (and let the transaction roll back).
    """
    table = metadata.tables[f"{metadata.schema}.processed_messages"]
    result = await conn.execute(
        insert(table)
        .values(consumer=consumer, message_id=message_id)
        .on_conflict_do_nothing()
        .returning(table.c.message_id)
    )
    return result.first() is not None
