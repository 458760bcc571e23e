"""The assessment service's tables (schema ``assessment``).

Quizzes and exercises keep their answer keys (correct options, model answers,
rubrics, reference solutions, hidden tests); the queries decide what a learner sees.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.db import service_metadata

metadata = service_metadata("assessment")


def _created() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


# the lessons assessed, as they were: extra exercises are written from them later
lessons = Table(
    "lessons",
    metadata,
    Column("lesson_id", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("course_id", String(200), nullable=False),
    Column("module_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("markdown", Text, nullable=False),
    Column("profile", JSONB),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("quiz_id", String(200), nullable=False),
    # null when the lesson has no code; exercise_note says why
    Column("exercise_id", String(200)),
    Column("exercise_note", Text, nullable=False, server_default=""),
    _created(),
)
Index("ix_assessment_lessons_course", lessons.c.course_id, lessons.c.position)

quizzes = Table(
    "quizzes",
    metadata,
    Column("quiz_id", String(200), primary_key=True),
    Column("lesson_id", String(200), nullable=False),
    Column("lesson_version", Integer, nullable=False),
    Column("course_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("title", String(300), nullable=False),
    # [{question_id, kind: choice|open, question, options|model_answer+rubric}]
    Column("questions", JSONB, nullable=False),
    Column("model", String(200), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    _created(),
    UniqueConstraint("lesson_id", "lesson_version", name="quizzes_lesson_version"),
)

exercises = Table(
    "exercises",
    metadata,
    Column("exercise_id", String(200), primary_key=True),
    Column("lesson_id", String(200), nullable=False),
    Column("course_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("difficulty", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("language", String(30), nullable=False),
    Column("statement", Text, nullable=False),
    Column("starter_code", Text, nullable=False),
    Column("reference_solution", Text, nullable=False),
    Column("visible_tests", Text, nullable=False),
    Column("hidden_tests", Text, nullable=False),
    Column("hints", JSONB, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verification_note", Text, nullable=False),
    # the sandbox runs of the reference solution and the starter code
    Column("verification", JSONB, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("model", String(200), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    _created(),
)
Index("ix_exercises_lesson", exercises.c.lesson_id)

# a learner's graded quiz attempts
attempts = Table(
    "attempts",
    metadata,
    Column("attempt_id", String(200), primary_key=True),
    Column("quiz_id", String(200), nullable=False),
    Column("course_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("answers", JSONB, nullable=False),
    Column("results", JSONB, nullable=False),
    Column("score", Float, nullable=False),
    Column("max_score", Float, nullable=False),
    _created(),
)
Index("ix_attempts_user_course", attempts.c.user_id, attempts.c.course_id)

# a learner's graded code submissions
submissions = Table(
    "submissions",
    metadata,
    Column("submission_id", String(200), primary_key=True),
    Column("exercise_id", String(200), nullable=False),
    Column("course_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("tenant_id", String(200), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("code", Text, nullable=False),
    Column("status", String(30), nullable=False),
    Column("passed", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("results", JSONB, nullable=False),
    _created(),
)
Index("ix_submissions_user_course", submissions.c.user_id, submissions.c.course_id)
