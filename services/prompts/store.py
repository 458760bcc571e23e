"""The prompt registry's tables (schema ``prompts``).

Versions are immutable (a database trigger refuses UPDATE and DELETE); labels and
experiments are the only things that move.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("prompts")

templates = Table(
    "templates",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("task", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

versions = Table(
    "versions",
    metadata,
    Column(
        "name",
        String(200),
        ForeignKey("prompts.templates.name", ondelete="RESTRICT"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("messages", JSONB, nullable=False),
    Column("variables", JSONB, nullable=False),
    Column("model_config", JSONB, nullable=False),
    Column("digest", String(32), nullable=False),
    Column("change_note", Text, nullable=False),
    # "lectern" for a shipped default, else the author's user id
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

labels = Table(
    "labels",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("label", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["name", "version"], ["prompts.versions.name", "prompts.versions.version"]
    ),
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", String(200), primary_key=True),
    Column("name", String(200), ForeignKey("prompts.templates.name"), nullable=False),
    Column("label", String(100), nullable=False),
    # [{"version": 3, "weight": 0.5}, ...]
    Column("arms", JSONB, nullable=False),
    Column("status", String(20), nullable=False),  # running | stopped
    Column("note", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("stopped_at", DateTime(timezone=True)),
)
Index(
    "ux_experiments_running",
    experiments.c.name,
    experiments.c.label,
    unique=True,
    postgresql_where=text("status = 'running'"),
)

executions = Table(
    "executions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("job_id", String(200), index=True),
    Column("course_id", String(200)),
    Column("service", String(50), nullable=False),
    Column("task", String(100), nullable=False),
    Column("prompt_name", String(200), nullable=False),
    Column("prompt_version", String(50), nullable=False),
    Column("model", String(200), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("latency_ms", Float, nullable=False),
    Column("ttft_ms", Float),
    Column("status", String(20), nullable=False),
    Column("error_kind", String(50)),
    Column("attempts", Integer, nullable=False),
    Column("fallback_used", Boolean, nullable=False),
    Column("trace_id", String(32)),
    Column("variables", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("quality", JSONB, nullable=False),
    Column("experiment_id", String(200)),
    Column("prompt_fallback", Boolean, nullable=False, server_default=text("false")),
    Column("step", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_executions_prompt", executions.c.prompt_name, executions.c.prompt_version)
Index("ix_executions_course_step", executions.c.course_id, executions.c.step)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200), nullable=False),
    # what was rated: a job (all its calls), or one step of a course (a lesson)
    Column("job_id", String(200)),
    Column("course_id", String(200)),
    Column("step", String(200)),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_feedback_job", feedback.c.job_id)
Index("ix_feedback_course_step", feedback.c.course_id, feedback.c.step)
