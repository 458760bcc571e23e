"""planner: the sources each course has (plans are grounded in them)

Revision ID: planner_0004
Revises: planner_0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "planner_0004"
down_revision = "planner_0003"
branch_labels = None
depends_on = None
SCHEMA = "planner"


def upgrade() -> None:
    op.create_table(
        "course_sources",
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("source_id", name="pk_course_sources"),
        schema=SCHEMA,
    )
    op.create_index("ix_course_sources_course_id", "course_sources", ["course_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_course_sources_course_id", table_name="course_sources", schema=SCHEMA)
    op.drop_table("course_sources", schema=SCHEMA)
