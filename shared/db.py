"""Database plumbing: async engine, a schema per service, idempotent consumption.

Each service owns one PostgreSQL schema (named after the service) and its tables;
the platform tables every service has (``processed_messages``, ``outbox``) are added
to its metadata by :func:`service_metadata`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from contextvars import ContextVar, Token
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from shared.settings import LecternSettings

log = logging.getLogger("lectern.db")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


# connection exceptions (class 08), shutting down or starting up (57P01-57P03)
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL cannot be reached right now (a restart, an
    outage) rather than that a statement is wrong: waiting and trying again may help."""
    # refused or dropped connections (not BrokenPipeError: pipes are not the database's)
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError | ConnectionAbortedError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return True
        state = getattr(exc.orig, "sqlstate", None)
        return isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES)
    return False


def make_engine(
    settings: LecternSettings, *, pool_size: int | None = None, pre_ping: bool = True
) -> AsyncEngine:
    """An async engine on ``settings.database_url`` with a bounded pool.

    ``pre_ping`` checks each connection as it leaves the pool: one the database closed
    (a restart, an idle timeout) is replaced, not handed out, so a generation finishing
    just after a database restart stores its result rather than failing and being
    generated, and billed, again. The check is local (:func:`_refuse_closed`), not
    SQLAlchemy's ``pool_pre_ping``, which costs three round trips per checkout. A
    caller that retries on :func:`database_unavailable` anyway may do without it: a
    dead connection then fails its first statement, which invalidates the pool.
    """
    size = settings.db_pool_size if pool_size is None else pool_size
    engine = create_async_engine(
        settings.database_url,
        pool_size=size,
        max_overflow=size,
        pool_recycle=1800,
    )
    if pre_ping:
        event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: a connection the server has closed is discarded, and the pool
    hands out another (it retries a checkout that raises ``DisconnectionError``).

    A restarting or stopping PostgreSQL ends every session, and the end of each socket
    reaches the event loop, which marks the asyncpg connection closed: a look at that
    flag finds them without a round trip. (SQLAlchemy's ``pool_pre_ping`` sends BEGIN,
    an empty query and ROLLBACK at every checkout, about 0.3 ms of CPU and three waits
    on a busy server, several times per message handled.)
    """
    driver = getattr(dbapi_connection, "_connection", None)  # asyncpg's, under the adapter
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the database closed this pooled connection")


async def warm_pool(engine: AsyncEngine, connections: int) -> None:
    """Open ``connections`` pooled connections now, so a burst of work (every lesson of
    a course at once) does not wait for connection set-up inside requests."""

    async def touch() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)  # hold it so the others open their own

    await asyncio.gather(*(touch() for _ in range(connections)))


_autocommit_engines: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = (
    weakref.WeakKeyDictionary()
)


def autocommit(bind: AsyncEngine | async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """``bind`` (or a sessionmaker's engine) running each statement on its own, with no
    BEGIN and COMMIT (or ROLLBACK) around it: one round trip where a transaction of one
    statement takes three. For work that is one statement, and for reads that need no
    snapshot shared by several statements. The same pool; built once per engine."""
    engine: AsyncEngine = bind.kw["bind"] if isinstance(bind, async_sessionmaker) else bind
    found = _autocommit_engines.get(engine)
    if found is None:
        found = engine.execution_options(isolation_level="AUTOCOMMIT")
        _autocommit_engines[engine] = found
    return found


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
        # 'working' while a delivery holds the lease, 'done' once its effects committed
        Column("status", String(10), nullable=False, server_default="done"),
        Column("lease_until", DateTime(timezone=True)),
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


def _processed(metadata: MetaData) -> Table:
    return metadata.tables[f"{metadata.schema}.processed_messages"]


# The statements every handled message runs, built once per table and run with
# parameters: building one (``insert().values().on_conflict_do_update()``) cost more
# CPU than sending it, about 0.15 ms a statement, several times per message.


@cache
def _claim_statement(table: Table) -> Any:
    """Mark ``(consumer, message_id)`` done, unless it is already: params ``consumer``,
    ``message_id``, ``status`` ("done")."""
    return (
        insert(table)
        .on_conflict_do_update(
            index_elements=[table.c.consumer, table.c.message_id],
            set_={"status": "done", "lease_until": None, "processed_at": func.now()},
            where=table.c.status == "working",
        )
        .returning(table.c.message_id)
    )


def _lease_until(lease_s: float) -> Any:
    return func.now() + text(f"interval '{float(lease_s)} seconds'")


@cache
def _lease_statement(table: Table, lease_s: float) -> Any:
    """Take the lease, or take over an expired one: params ``consumer``, ``message_id``,
    ``status`` ("working"); returns seconds since the message was first taken."""
    return (
        insert(table)
        .values(lease_until=_lease_until(lease_s))
        .on_conflict_do_update(
            index_elements=[table.c.consumer, table.c.message_id],
            set_={"lease_until": _lease_until(lease_s)},
            where=(table.c.status == "working") & (table.c.lease_until < func.now()),
        )
        .returning(func.extract("epoch", func.now() - table.c.processed_at))
    )


@cache
def _status_statement(table: Table) -> Any:
    return select(table.c.status).where(
        table.c.consumer == bindparam("key_consumer"),
        table.c.message_id == bindparam("key_message_id"),
    )


@cache
def _free_statement(table: Table) -> Any:
    """Let an unfinished lease expire now: params ``key_consumer``, ``key_message_id``."""
    return (
        update(table)
        .where(
            table.c.consumer == bindparam("key_consumer"),
            table.c.message_id == bindparam("key_message_id"),
            table.c.status == "working",
        )
        .values(lease_until=func.now() - text("interval '1 millisecond'"))
    )


async def claim_message(
    conn: AsyncConnection | AsyncSession, metadata: MetaData, consumer: str, message_id: str
) -> bool:
    """Record ``(consumer, message_id)`` as done in the caller's transaction.

    Returns False when it was already done: the message is a redelivery and the
    caller must skip its effects (and let the transaction roll back). A lease taken
    by :class:`WorkLease` for the same message is turned into 'done'.
    """
    table = _processed(metadata)
    result = await conn.execute(
        _claim_statement(table),
        {"consumer": consumer, "message_id": message_id, "status": "done"},
    )
    claimed = result.first() is not None
    key = (table.fullname, consumer, message_id)
    if claimed and key in _leased and isinstance(conn, AsyncSession):
        # known done once this transaction commits: the lease's release can skip its
        # statement (see _claims_committed)
        conn.sync_session.info.setdefault(_CLAIMS, []).append(key)
    return claimed


# Leases this process holds, and those of them whose claim has committed. Their release
# then needs no statement (the row is 'done'; the release's UPDATE would match nothing):
# one transaction less per message handled under a lease.
_CLAIMS = "lectern_claims"
_leased: Counter[tuple[str, str, str]] = Counter()
_claims_done: set[tuple[str, str, str]] = set()


@event.listens_for(Session, "after_commit")
def _claims_committed(session: Session) -> None:
    for key in session.info.pop(_CLAIMS, ()):
        if key in _leased:
            _claims_done.add(key)


@event.listens_for(Session, "after_transaction_end")
def _claims_forgotten(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back (a commit has taken them already)
        session.info.pop(_CLAIMS, None)


lease_taken_after_ms: ContextVar[int | None] = ContextVar("lease_taken_after_ms", default=None)
"""While a :class:`WorkLease` is held: milliseconds from the message's first lease to
this one (0 for the first). Every later holder of the same message gets a larger
number, whatever the broker's headers say (an identical copy of the message included):
:class:`~shared.streaming.ChunkStreamer` numbers its attempts from it."""


class _LeaseRenewer:
    """Renews every lease one process holds in one table, in one statement per interval.

    A worker holding a thousand generations would otherwise run a hundred transactions a
    second just to keep its leases. Each lease is renewed at most ``lease_s / 3`` after it
    was taken or last renewed, as before; a failed renewal is tried again next time.
    """

    BATCH = 1000  # leases per statement (two parameters each; PostgreSQL takes 32767)

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], table: Table, lease_s: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = table
        self.lease_s = lease_s
        self.held: Counter[tuple[str, str]] = Counter()
        self.loop = asyncio.get_running_loop()
        self.renewing = asyncio.Lock()  # held while a renewal is under way
        self.task: asyncio.Task[None] | None = None

    def add(self, key: tuple[str, str]) -> None:
        self.held[key] += 1
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="work-lease-renewer")

    async def remove(self, key: tuple[str, str]) -> None:
        """Stop renewing ``key``; returns once no renewal that may include it is under
        way (one finishing later would extend a lease just freed for a retry)."""
        self.held[key] -= 1
        if self.held[key] <= 0:
            del self.held[key]
        # bounded: a renewal stuck on an unreachable database must not hold up a release
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.lease_s / 3), self.renewing:
                pass

    async def _run(self) -> None:
        while self.held:
            await asyncio.sleep(self.lease_s / 3)
            async with self.renewing:
                keys = list(self.held)
                for start in range(0, len(keys), self.BATCH):
                    await self._renew(keys[start : start + self.BATCH])

    async def _renew(self, keys: list[tuple[str, str]]) -> None:
        t = self.table
        until = _lease_until(self.lease_s)
        try:
            async with autocommit(self.sessionmaker).connect() as conn:
                await conn.execute(
                    update(t)
                    .where(tuple_(t.c.consumer, t.c.message_id).in_(keys), t.c.status == "working")
                    .values(lease_until=until)
                )
        except Exception as exc:
            # A database blip must not end the renewals: the leases would run out while
            # the work goes on, and redeliveries would do (and bill) it a second time.
            log.warning(
                "renewing %s work leases failed (%s); trying again", len(keys), type(exc).__name__
            )


_renewers: dict[tuple[int, int, str, float], _LeaseRenewer] = {}


def _renewer(
    sessionmaker: async_sessionmaker[AsyncSession], table: Table, lease_s: float
) -> _LeaseRenewer:
    """The running loop's renewer for ``table`` through ``sessionmaker``."""
    loop = asyncio.get_running_loop()
    key = (id(loop), id(sessionmaker), table.fullname, lease_s)
    found = _renewers.get(key)
    if found is None or found.loop is not loop or found.sessionmaker is not sessionmaker:
        found = _renewers[key] = _LeaseRenewer(sessionmaker, table, lease_s)
    return found


class WorkLease:
    """Stops two deliveries of one message from both doing costly work (an LLM call).

    ``acquire`` returns "go" (we hold the lease), "done" (effects already committed:
    skip) or waits while another live delivery holds it. The holder renews the lease
    while it works; if it dies, the lease expires and a redelivery takes over.
    :func:`claim_message` in the final transaction marks the message done. The row is
    kept (expired) when work fails, so it remembers when the message was first taken
    (:data:`lease_taken_after_ms`).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        metadata: MetaData,
        consumer: str,
        message_id: str,
        *,
        lease_s: float = 30.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.table = _processed(metadata)
        self.consumer = consumer
        self.message_id = message_id
        self.lease_s = lease_s
        self._renewer: _LeaseRenewer | None = None
        self._context: Token[int | None] | None = None
        self.taken_after_ms = 0

    def _held_key(self) -> tuple[str, str, str]:
        return (self.table.fullname, self.consumer, self.message_id)

    def _key(self) -> dict[str, str]:
        return {"key_consumer": self.consumer, "key_message_id": self.message_id}

    async def _try(self) -> str:
        # each statement is atomic alone: no transaction around them (autocommit)
        async with autocommit(self.sessionmaker).connect() as conn:
            taken = await conn.execute(
                _lease_statement(self.table, self.lease_s),
                {"consumer": self.consumer, "message_id": self.message_id, "status": "working"},
            )
            row = taken.first()
            if row is not None:
                self.taken_after_ms = round(float(row[0]) * 1000)
                return "go"
            row = (await conn.execute(_status_statement(self.table), self._key())).first()
        return "done" if row is not None and row.status == "done" else "busy"

    async def acquire(self, poll_s: float = 0.5) -> bool:
        """True when this delivery should do the work; False when it is already done."""
        while True:
            state = await self._try()
            if state == "go":
                _leased[self._held_key()] += 1
                self._renewer = _renewer(self.sessionmaker, self.table, self.lease_s)
                self._renewer.add((self.consumer, self.message_id))
                self._context = lease_taken_after_ms.set(self.taken_after_ms)
                return True
            if state == "done":
                return False
            await asyncio.sleep(poll_s)  # another delivery is working on it right now

    async def release(self) -> None:
        """Stop renewing; if the work did not finish, free the lease for a retry now.

        The row stays, expired: the next holder takes it over, and its
        :data:`lease_taken_after_ms` counts from the message's first lease.
        """
        if self._context is not None:
            with contextlib.suppress(ValueError):  # acquired in another task's context
                lease_taken_after_ms.reset(self._context)
            self._context = None
        if self._renewer is None:
            return  # never acquired
        renewer, self._renewer = self._renewer, None
        await renewer.remove((self.consumer, self.message_id))
        key = self._held_key()
        _leased[key] -= 1
        if _leased[key] <= 0:
            del _leased[key]
        if key in _claims_done:
            if key not in _leased:
                _claims_done.discard(key)
            return  # the work committed: the row is 'done', nothing to free
        async with autocommit(self.sessionmaker).connect() as conn:
            await conn.execute(_free_statement(self.table), self._key())

    async def __aenter__(self) -> bool:
        return await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
