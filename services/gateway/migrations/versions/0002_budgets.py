"""gateway: token budgets per account and month

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None
SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("account", sa.String(220), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("tokens_used", sa.BigInteger, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("budgets", schema=SCHEMA)
