"""The gateway's tables (schema ``gateway``): users, jobs, the event log, budgets, rate limits."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("gateway")

users = Table(
    "users",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("email", String(320), unique=True),
    Column("password_hash", String(500)),
    Column("is_guest", Boolean, nullable=False),
    Column("role", String(30), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("user_id", String(200), index=True),
    Column("tenant_id", String(200)),
    Column("kind", String(50)),
    Column("course_id", String(200)),
    # event schemas (without version) after which the job's stream ends
    Column("final_events", JSONB, nullable=False),
    Column("status", String(20), nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

events = Table(
    "events",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("event", String(200), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# LLM tokens each budget account used per calendar month (UTC), charged from the
# llm.call_completed events the event log stores (once each, by message_id)
budgets = Table(
    "budgets",
    metadata,
    Column("account", String(220), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("tokens_used", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# requests counted per rate limit, subject (hashed) and fixed window; a row goes once
# its window has passed (expires_at)
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key", String(120), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
