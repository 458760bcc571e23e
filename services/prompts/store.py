"""The prompt registry's tables (schema ``prompts``)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("prompts")

executions = Table(
    "executions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("job_id", String(200), index=True),
    Column("course_id", String(200)),
    Column("service", String(50), nullable=False),
    Column("task", String(100), nullable=False),
    Column("prompt_name", String(200), nullable=False),
    Column("prompt_version", String(50), nullable=False),
    Column("model", String(200), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("status", String(20), nullable=False),
    Column("error_kind", String(50)),
    Column("attempts", Integer, nullable=False),
    Column("fallback_used", Boolean, nullable=False),
    Column("trace_id", String(32)),
    Column("variables", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("quality", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
