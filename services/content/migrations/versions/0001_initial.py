"""content: platform tables

Revision ID: content_0001
Revises:
Create Date: 2026-11-24
"""

from shared.migration_ops import create_platform_tables, drop_platform_tables

revision = "content_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "content"


def upgrade() -> None:
    create_platform_tables(SCHEMA)


def downgrade() -> None:
    drop_platform_tables(SCHEMA)
