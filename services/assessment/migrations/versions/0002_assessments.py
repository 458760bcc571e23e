"""assessment: assessed lessons, quizzes, exercises, attempts, submissions

Revision ID: assessment_0002
Revises: assessment_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "assessment_0002"
down_revision = "assessment_0001"
branch_labels = None
depends_on = None
SCHEMA = "assessment"


def _created() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _owner() -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200)),
    ]


def upgrade() -> None:
    op.create_table(
        "lessons",
        sa.Column("lesson_id", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("module_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("profile", JSONB),
        *_owner(),
        sa.Column("quiz_id", sa.String(200), nullable=False),
        sa.Column("exercise_id", sa.String(200)),
        sa.Column("exercise_note", sa.Text, nullable=False, server_default=""),
        _created(),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_assessment_lessons_course", "lessons", ["course_id", "position"], schema=SCHEMA
    )
    op.create_table(
        "quizzes",
        sa.Column("quiz_id", sa.String(200), primary_key=True),
        sa.Column("lesson_id", sa.String(200), nullable=False),
        sa.Column("lesson_version", sa.Integer, nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        *_owner(),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("questions", JSONB, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        _created(),
        sa.UniqueConstraint("lesson_id", "lesson_version", name="quizzes_lesson_version"),
        schema=SCHEMA,
    )
    op.create_table(
        "exercises",
        sa.Column("exercise_id", sa.String(200), primary_key=True),
        sa.Column("lesson_id", sa.String(200), nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        *_owner(),
        sa.Column("difficulty", sa.String(20), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("language", sa.String(30), nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("starter_code", sa.Text, nullable=False),
        sa.Column("reference_solution", sa.Text, nullable=False),
        sa.Column("visible_tests", sa.Text, nullable=False),
        sa.Column("hidden_tests", sa.Text, nullable=False),
        sa.Column("hints", JSONB, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("verification_note", sa.Text, nullable=False),
        sa.Column("verification", JSONB, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        _created(),
        schema=SCHEMA,
    )
    op.create_index("ix_exercises_lesson", "exercises", ["lesson_id"], schema=SCHEMA)
    op.create_table(
        "attempts",
        sa.Column("attempt_id", sa.String(200), primary_key=True),
        sa.Column("quiz_id", sa.String(200), nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("answers", JSONB, nullable=False),
        sa.Column("results", JSONB, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("max_score", sa.Float, nullable=False),
        _created(),
        schema=SCHEMA,
    )
    op.create_index("ix_attempts_user_course", "attempts", ["user_id", "course_id"], schema=SCHEMA)
    op.create_table(
        "submissions",
        sa.Column("submission_id", sa.String(200), primary_key=True),
        sa.Column("exercise_id", sa.String(200), nullable=False),
        sa.Column("course_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("results", JSONB, nullable=False),
        _created(),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_submissions_user_course", "submissions", ["user_id", "course_id"], schema=SCHEMA
    )


def downgrade() -> None:
    for table in ("submissions", "attempts", "exercises", "quizzes", "lessons"):
        op.drop_table(table, schema=SCHEMA)
