"""The planner's tables (schema ``planner``)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
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
    # planning → generating → ready (finalisation failing leaves it planning)
    Column("status", String(30), nullable=False),
    Column("title", String(300)),
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
    # a summary stands for the first ``covers`` messages of the chat
    Column("covers", Integer),
    Column("seq", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

modules = Table(
    "modules",
    metadata,
    Column("module_id", String(200), primary_key=True),
    Column(
        "course_id",
        String(200),
        ForeignKey("planner.courses.course_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("position", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("learning_objectives", JSONB, nullable=False),
    Column("estimated_hours", Float, nullable=False),
    # pending → written; a lesson that could not be written is failed
    Column("lesson_status", String(20), nullable=False),
    Column("lesson_id", String(200)),
    # pending → ready when assessment.ready lands; failed when it cannot be assessed
    Column("assessment_status", String(20), nullable=False, server_default="pending"),
    Column("quiz_id", String(200)),
    Column("exercise_id", String(200)),
    # message_id of the content.write_lesson command: a job.failed names it
    Column("command_id", String(200), nullable=False, unique=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("course_id", "position", name="modules_course_position"),
)

# the course sources content has ingested (from source.ingested / source.deleted): a
# course with any is planned from retrieved passages of them
course_sources = Table(
    "course_sources",
    metadata,
    Column("source_id", String(200), primary_key=True),
    Column("course_id", String(200), nullable=False, index=True),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("filename", String(300), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
