"""The content service's tables (schema ``content``): lessons, every version kept."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("content")

lessons = Table(
    "lessons",
    metadata,
    # the same lesson_id for every version: uuid5 of (course_id, module_id)
    Column("lesson_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("course_id", String(200), nullable=False),
    Column("module_id", String(200), nullable=False),
    # the module's position in the course, from 1 ("order" in the contracts)
    Column("position", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("markdown", Text, nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    # what the lesson was written from (course title, module, outline, learner
    # profile), so a revision prompt knows the learner without asking the planner
    Column("brief", JSONB, nullable=False),
    Column("model", String(200), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("feedback", Text),  # null for version 1
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("course_id", "position", "version"),
)
Index("ix_lessons_course_id", lessons.c.course_id)
