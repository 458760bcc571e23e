"""prompts: execution log

Revision ID: prompts_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.migration_ops import create_platform_tables, drop_platform_tables

revision = "prompts_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "prompts"


def upgrade() -> None:
    create_platform_tables(SCHEMA)
    op.create_table(
        "executions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(200), nullable=False, unique=True),
        sa.Column("job_id", sa.String(200), index=True),
        sa.Column("course_id", sa.String(200)),
        sa.Column("service", sa.String(50), nullable=False),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("prompt_name", sa.String(200), nullable=False),
        sa.Column("prompt_version", sa.String(50), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_kind", sa.String(50)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("fallback_used", sa.Boolean, nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("quality", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("executions", schema=SCHEMA)
    drop_platform_tables(SCHEMA)
