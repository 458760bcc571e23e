"""Commands the assessment service consumes and events it produces.

Events carry ids and counts, never answer keys: the job's event stream reaches the
learner, who must not read the correct options or the reference solution there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import Message, Payload

Difficulty = Literal["easier", "standard", "harder"]


class ExerciseSummary(Payload):
    """A coding exercise, as events describe it (no solution, no hidden tests)."""

    exercise_id: str = Field(description="Id of the exercise (for submissions).")
    title: str = Field(description="Exercise title.")
    language: str = Field(description="Language the exercise is in.", examples=["python"])
    difficulty: Difficulty = Field(description="Difficulty relative to the lesson.")
    verified: bool = Field(
        description=(
            "Whether the sandbox confirmed it: the reference solution passes every test "
            "and the starter code fails at least one."
        )
    )
    verification_note: str = Field(
        "", description="Why it is unverified (empty when verified).", examples=[""]
    )
    attempts: int = Field(ge=1, description="Generations it took (regenerated when unverified).")


class AssessmentReadyPayload(Payload):
    course_id: str = Field(description="Course of the lesson.", examples=["c-1"])
    module_id: str = Field(description="Module of the lesson.")
    lesson_id: str = Field(description="The lesson assessed.")
    order: int = Field(ge=1, description="Module position of the lesson, from 1.", examples=[1])
    lesson_version: int = Field(ge=1, description="Lesson version the assessment was written for.")
    quiz_id: str = Field(description="Id of the lesson's quiz (for attempts).")
    multiple_choice: int = Field(ge=0, description="Multiple-choice questions in the quiz.")
    open_questions: int = Field(ge=0, description="Open questions in the quiz.")
    exercise: ExerciseSummary | None = Field(
        None, description="The lesson's coding exercise; null when the lesson has no code."
    )
    exercise_note: str = Field(
        "",
        description="Why the lesson has no exercise (empty when it has one).",
        examples=["The lesson has no code, so it has a quiz but no coding exercise."],
    )
    input_tokens: int = Field(ge=0, description="Prompt tokens used.")
    output_tokens: int = Field(ge=0, description="Completion tokens used.")


class AssessmentReady(Message):
    """A lesson's quiz (and coding exercise, when its topic has code) is stored."""

    SCHEMA = "assessment.ready.v1"
    payload: AssessmentReadyPayload


class GenerateExercisePayload(Payload):
    course_id: str = Field(min_length=1, description="Course of the lesson.", examples=["c-1"])
    order: int = Field(ge=1, description="Module position of the lesson, from 1.", examples=[2])
    difficulty: Difficulty = Field(
        description="Easier or harder than the learner's last exercise of the lesson.",
        examples=["harder"],
    )


class GenerateExercise(Message):
    """Write and verify another coding exercise for a lesson, at a new difficulty."""

    SCHEMA = "assessment.generate_exercise.v1"
    KIND = "command"
    payload: GenerateExercisePayload


class ExerciseReadyPayload(Payload):
    course_id: str = Field(description="Course of the lesson.", examples=["c-1"])
    lesson_id: str = Field(description="The lesson the exercise practises.")
    order: int = Field(ge=1, description="Module position of the lesson, from 1.")
    exercise: ExerciseSummary = Field(description="The new exercise.")
    input_tokens: int = Field(ge=0, description="Prompt tokens used.")
    output_tokens: int = Field(ge=0, description="Completion tokens used.")


class ExerciseReady(Message):
    """A requested extra exercise is written, verified and stored."""

    SCHEMA = "exercise.ready.v1"
    payload: ExerciseReadyPayload
