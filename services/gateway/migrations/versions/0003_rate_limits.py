"""gateway: rate limit counters per limit, subject and window

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None
SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_rate_limits_expires_at", "rate_limits", schema=SCHEMA)
    op.drop_table("rate_limits", schema=SCHEMA)
