"""The content service's tables (schema ``content``): lessons, every version kept; the
course sources and their chunks (text, embedding, full-text index) for retrieval."""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

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
    # passages of the course's sources cited as [S<n>] in the markdown (null: none)
    Column("citations", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("course_id", "position", "version"),
)
Index("ix_lessons_course_id", lessons.c.course_id)

# one row per source file of a course; re-ingesting replaces its chunks (revision + 1)
sources = Table(
    "sources",
    metadata,
    Column("source_id", String(200), primary_key=True),
    Column("course_id", String(200), nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("filename", String(300), nullable=False),
    Column("kind", String(20), nullable=False),  # markdown, text, html, pdf
    Column("content_sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),  # the original, to re-index later
    Column("language", String(20), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("page_count", Integer),
    Column("embedding_model", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the same file twice in a course is a duplicate, whatever its name
    UniqueConstraint("tenant_id", "course_id", "content_sha256"),
)
Index("ix_sources_course_id", sources.c.course_id)

chunks = Table(
    "chunks",
    metadata,
    Column("chunk_id", String(200), primary_key=True),
    Column(
        "source_id",
        String(200),
        ForeignKey("content.sources.source_id", ondelete="CASCADE"),
        nullable=False,
    ),
    # the owner and course again: retrieval filters on them without a join
    Column("course_id", String(200), nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("ordinal", Integer, nullable=False),
    Column("section", Text, nullable=False),
    Column("page", Integer),
    Column("text", Text, nullable=False),
    # unit vector (float4[]): numpy reads it for exact search; pgvector casts it (::vector)
    Column("embedding", ARRAY(REAL), nullable=False),
    # heading (weight A) and text (weight B), in the source's text search configuration
    Column("tsv", TSVECTOR, nullable=False),
)
Index("ix_chunks_course_id", chunks.c.course_id)
Index("ix_chunks_source_id", chunks.c.source_id)
Index("ix_chunks_tsv", chunks.c.tsv, postgresql_using="gin")

# a large file arrives in parts (gateway RPC ``stage_upload``) before its ingest command
# names it: no message carries more than a part
uploads = Table(
    "uploads",
    metadata,
    Column("upload_id", String(200), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
