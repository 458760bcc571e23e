"""prompts: templates, immutable versions, labels, experiments, feedback

Revision ID: prompts_0002
Revises: prompts_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "prompts_0002"
down_revision = "prompts_0001"
branch_labels = None
depends_on = None
SCHEMA = "prompts"


def _now() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("task", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        _now(),
        schema=SCHEMA,
    )
    op.create_table(
        "versions",
        sa.Column(
            "name",
            sa.String(200),
            sa.ForeignKey(f"{SCHEMA}.templates.name", ondelete="RESTRICT"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("messages", JSONB, nullable=False),
        sa.Column("variables", JSONB, nullable=False),
        sa.Column("model_config", JSONB, nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("change_note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _now(),
        schema=SCHEMA,
    )
    # a version, once saved, never changes: rollback is moving a label
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.versions_are_immutable() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'prompt versions are immutable: save a new version instead';
        END;
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(  # one statement per execute: asyncpg prepares each
        f"""
        CREATE TRIGGER versions_are_immutable BEFORE UPDATE OR DELETE ON {SCHEMA}.versions
            FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.versions_are_immutable()
        """
    )
    op.create_table(
        "labels",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("label", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(
            ["name", "version"], [f"{SCHEMA}.versions.name", f"{SCHEMA}.versions.version"]
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.String(200), primary_key=True),
        sa.Column(
            "name", sa.String(200), sa.ForeignKey(f"{SCHEMA}.templates.name"), nullable=False
        ),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("arms", JSONB, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_index(
        "ux_experiments_running",
        "experiments",
        ["name", "label"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.add_column("executions", sa.Column("experiment_id", sa.String(200)), schema=SCHEMA)
    op.add_column(
        "executions",
        sa.Column("prompt_fallback", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.add_column("executions", sa.Column("step", sa.String(200)), schema=SCHEMA)
    op.create_index(
        "ix_executions_prompt", "executions", ["prompt_name", "prompt_version"], schema=SCHEMA
    )
    op.create_index("ix_executions_course_step", "executions", ["course_id", "step"], schema=SCHEMA)
    op.create_table(
        "feedback",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("job_id", sa.String(200)),
        sa.Column("course_id", sa.String(200)),
        sa.Column("step", sa.String(200)),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        _now(),
        schema=SCHEMA,
    )
    op.create_index("ix_feedback_job", "feedback", ["job_id"], schema=SCHEMA)
    op.create_index("ix_feedback_course_step", "feedback", ["course_id", "step"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("feedback", schema=SCHEMA)
    op.drop_index("ix_executions_course_step", "executions", schema=SCHEMA)
    op.drop_index("ix_executions_prompt", "executions", schema=SCHEMA)
    for column in ("step", "prompt_fallback", "experiment_id"):
        op.drop_column("executions", column, schema=SCHEMA)
    op.drop_table("experiments", schema=SCHEMA)
    op.drop_table("labels", schema=SCHEMA)
    op.drop_table("versions", schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.versions_are_immutable()")
    op.drop_table("templates", schema=SCHEMA)
