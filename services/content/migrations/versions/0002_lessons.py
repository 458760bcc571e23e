"""content: lessons, one row per version

Revision ID: content_0002
Revises: content_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "content_0002"
down_revision = "content_0001"
branch_labels = None
depends_on = None
SCHEMA = "content"


def upgrade() -> None:
    op.create_table(
        "lessons",
        sa.Column("lesson_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("module_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("brief", JSONB, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("feedback", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("lesson_id", "version", name="pk_lessons"),
        sa.UniqueConstraint(
            "course_id", "position", "version", name="uq_lessons_course_id_position_version"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_lessons_course_id", "lessons", ["course_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_lessons_course_id", table_name="lessons", schema=SCHEMA)
    op.drop_table("lessons", schema=SCHEMA)
