"""planner: courses and planning chats

Revision ID: planner_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.migration_ops import create_platform_tables, drop_platform_tables

revision = "planner_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "planner"


def upgrade() -> None:
    create_platform_tables(SCHEMA)
    op.create_table(
        "courses",
        sa.Column("course_id", sa.String(200), primary_key=True),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("profile", JSONB, nullable=False),
        sa.Column("auto_finalize", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column(
            "course_id",
            sa.String(200),
            sa.ForeignKey(f"{SCHEMA}.courses.course_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("chat_messages", schema=SCHEMA)
    op.drop_table("courses", schema=SCHEMA)
    drop_platform_tables(SCHEMA)
