"""planner: modules, course titles, chat order and summaries

Revision ID: planner_0002
Revises: planner_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "planner_0002"
down_revision = "planner_0001"
branch_labels = None
depends_on = None
SCHEMA = "planner"


def upgrade() -> None:
    op.add_column("courses", sa.Column("title", sa.String(300)), schema=SCHEMA)
    op.add_column("chat_messages", sa.Column("covers", sa.Integer), schema=SCHEMA)
    op.add_column(
        "chat_messages",
        sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.alter_column("chat_messages", "seq", server_default=None, schema=SCHEMA)
    op.create_table(
        "modules",
        sa.Column("module_id", sa.String(200), primary_key=True),
        sa.Column(
            "course_id",
            sa.String(200),
            sa.ForeignKey(f"{SCHEMA}.courses.course_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("learning_objectives", JSONB, nullable=False),
        sa.Column("estimated_hours", sa.Float, nullable=False),
        sa.Column("lesson_status", sa.String(20), nullable=False),
        sa.Column("lesson_id", sa.String(200)),
        sa.Column("command_id", sa.String(200), nullable=False, unique=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("course_id", "position", name="modules_course_position"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("modules", schema=SCHEMA)
    op.drop_column("chat_messages", "seq", schema=SCHEMA)
    op.drop_column("chat_messages", "covers", schema=SCHEMA)
    op.drop_column("courses", "title", schema=SCHEMA)
