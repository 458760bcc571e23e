"""The planner's tables (schema ``planner``)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("planner")

courses = Table(
    "courses",
    metadata,
    Column("course_id", String(200), primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("job_id", String(200), nullable=False),
    Column("profile", JSONB, nullable=False),
    Column("auto_finalize", Boolean, nullable=False, default=False),
    Column("status", String(30), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", String(200), primary_key=True),
    Column(
        "course_id",
        String(200),
        ForeignKey("planner.courses.course_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(20), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("content", Text, nullable=False),
    Column("model", String(200)),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("latency_ms", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
