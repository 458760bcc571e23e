"""assessment: platform tables

Revision ID: assessment_0001
Revises:
Create Date: 2026-11-24
"""

from shared.migration_ops import create_platform_tables, drop_platform_tables

revision = "assessment_0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "assessment"


def upgrade() -> None:
    create_platform_tables(SCHEMA)


def downgrade() -> None:
    drop_platform_tables(SCHEMA)
