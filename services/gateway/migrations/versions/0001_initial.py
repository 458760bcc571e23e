"""gateway: users, jobs, event log

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.migration_ops import create_platform_tables, drop_platform_tables

revision = "gateway_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "gateway"


def upgrade() -> None:
    create_platform_tables(SCHEMA)
    now = sa.func.now()
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), unique=True),
        sa.Column("password_hash", sa.String(500)),
        sa.Column("is_guest", sa.Boolean, nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(200), primary_key=True),
        sa.Column("user_id", sa.String(200), index=True),
        sa.Column("tenant_id", sa.String(200)),
        sa.Column("kind", sa.String(50)),
        sa.Column("course_id", sa.String(200)),
        sa.Column("final_events", JSONB, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )
    op.create_table(
        "events",
        sa.Column("job_id", sa.String(200), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("message_id", sa.String(200), nullable=False, unique=True),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("events", schema=SCHEMA)
    op.drop_table("jobs", schema=SCHEMA)
    op.drop_table("users", schema=SCHEMA)
    drop_platform_tables(SCHEMA)
