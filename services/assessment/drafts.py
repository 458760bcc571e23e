"""What the model is asked to return (structured output), validated before anything is stored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from services.assessment.sandbox import discover


class ChoiceOption(BaseModel):
    text: str = Field(min_length=1, max_length=500, description="The option as shown.")
    correct: bool = Field(description="Whether this is the one correct option.")
    explanation: str = Field(
        min_length=1, max_length=1000, description="Why this option is right or wrong."
    )


class MultipleChoiceDraft(BaseModel):
    question: str = Field(min_length=1, max_length=1000)
    options: list[ChoiceOption] = Field(min_length=2, max_length=6)

    @model_validator(mode="after")
    def _one_correct(self) -> MultipleChoiceDraft:
        correct = sum(1 for o in self.options if o.correct)
        if correct != 1:
            raise ValueError(f"exactly one option must be correct, not {correct}")
        return self


class OpenQuestionDraft(BaseModel):
    question: str = Field(min_length=1, max_length=1000)
    model_answer: str = Field(min_length=1, max_length=3000, description="A full-marks answer.")
    rubric: list[str] = Field(
        min_length=1,
        max_length=6,
        description="What a good answer must contain, one criterion per item.",
    )


class QuizDraft(BaseModel):
    """A quiz on one lesson."""

    title: str = Field(min_length=1, max_length=300)
    multiple_choice: list[MultipleChoiceDraft] = Field(min_length=1, max_length=10)
    open_questions: list[OpenQuestionDraft] = Field(min_length=1, max_length=4)


def declared_tests(source: str, field: str) -> list[str]:
    """The top-level ``test*`` functions of ``source``; ValueError naming ``field`` if none."""
    names = discover({field: source})[field]
    if not names:
        raise ValueError(f"{field} defines no top-level test_* function")
    return names


class ExerciseDraft(BaseModel):
    """A coding exercise: the tests must pass on the solution and fail on the starter."""

    title: str = Field(min_length=1, max_length=300)
    language: Literal["python"] = Field(description="Only Python exercises are run and verified.")
    statement: str = Field(min_length=1, max_length=6000, description="The task, as markdown.")
    starter_code: str = Field(min_length=1, max_length=20000)
    reference_solution: str = Field(min_length=1, max_length=20000)
    visible_tests: str = Field(
        min_length=1, max_length=20000, description="test_* functions the learner sees."
    )
    hidden_tests: str = Field(
        min_length=1, max_length=20000, description="test_* functions only the grader runs."
    )
    hints: list[str] = Field(min_length=1, max_length=5)

    @field_validator("visible_tests", "hidden_tests")
    @classmethod
    def _defines_tests(cls, value: str, info: object) -> str:
        declared_tests(value, getattr(info, "field_name", "tests"))
        return value

    @model_validator(mode="after")
    def _distinct_tests(self) -> ExerciseDraft:
        visible = set(declared_tests(self.visible_tests, "visible_tests"))
        clash = visible & set(declared_tests(self.hidden_tests, "hidden_tests"))
        if clash:
            raise ValueError(f"test names used in both suites: {', '.join(sorted(clash))}")
        return self


class GradeDraft(BaseModel):
    """The grade of one open answer."""

    score: float = Field(ge=0, le=1, description="0 (wrong or missing) to 1 (meets the rubric).")
    feedback: str = Field(min_length=1, max_length=2000, description="What was good, what missed.")
