"""planner: each module's assessment status, quiz and exercise; timestamps not null

Revision ID: planner_0003
Revises: planner_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "planner_0003"
down_revision = "planner_0002"
branch_labels = None
depends_on = None
SCHEMA = "planner"
_TIMESTAMPS = [
    ("courses", "created_at"),
    ("courses", "updated_at"),
    ("chat_messages", "created_at"),
]


def upgrade() -> None:
    op.add_column(
        "modules",
        sa.Column("assessment_status", sa.String(20), nullable=False, server_default="pending"),
        schema=SCHEMA,
    )
    op.add_column("modules", sa.Column("quiz_id", sa.String(200)), schema=SCHEMA)
    op.add_column("modules", sa.Column("exercise_id", sa.String(200)), schema=SCHEMA)
    # 0001 left these nullable while the store (and every insert) has them set
    for table, column in _TIMESTAMPS:
        op.alter_column(table, column, nullable=False, schema=SCHEMA)


def downgrade() -> None:
    for table, column in _TIMESTAMPS:
        op.alter_column(table, column, nullable=True, schema=SCHEMA)
    op.drop_column("modules", "exercise_id", schema=SCHEMA)
    op.drop_column("modules", "quiz_id", schema=SCHEMA)
    op.drop_column("modules", "assessment_status", schema=SCHEMA)
