"""content: course sources and their chunks (retrieval); citations of lessons

Revision ID: content_0003
Revises: content_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

revision = "content_0003"
down_revision = "content_0002"
branch_labels = None
depends_on = None
SCHEMA = "content"


def upgrade() -> None:
    op.add_column("lessons", sa.Column("citations", JSONB), schema=SCHEMA)
    op.create_table(
        "sources",
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("page_count", sa.Integer),
        sa.Column("embedding_model", sa.String(200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("source_id", name="pk_sources"),
        sa.UniqueConstraint(
            "tenant_id",
            "course_id",
            "content_sha256",
            name="uq_sources_tenant_id_course_id_content_sha256",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_sources_course_id", "sources", ["course_id"], schema=SCHEMA)
    op.create_table(
        "chunks",
        sa.Column("chunk_id", sa.String(200), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("section", sa.Text, nullable=False),
        sa.Column("page", sa.Integer),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", ARRAY(sa.REAL), nullable=False),
        sa.Column("tsv", TSVECTOR, nullable=False),
        sa.PrimaryKeyConstraint("chunk_id", name="pk_chunks"),
        sa.ForeignKeyConstraint(
            ["source_id"],
            [f"{SCHEMA}.sources.source_id"],
            name="fk_chunks_source_id_sources",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_chunks_course_id", "chunks", ["course_id"], schema=SCHEMA)
    op.create_index("ix_chunks_source_id", "chunks", ["source_id"], schema=SCHEMA)
    op.create_index("ix_chunks_tsv", "chunks", ["tsv"], schema=SCHEMA, postgresql_using="gin")
    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.String(200), nullable=False),
        sa.Column("part", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("upload_id", "part", name="pk_uploads"),
        schema=SCHEMA,
    )
    # pgvector, where the server has it: retrieval then ranks vectors in SQL
    available = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    )
    if available.first() is not None:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")


def downgrade() -> None:
    op.drop_table("uploads", schema=SCHEMA)
    op.drop_table("chunks", schema=SCHEMA)
    op.drop_table("sources", schema=SCHEMA)
    op.drop_column("lessons", "citations", schema=SCHEMA)
