"""Prompts the assessment service ships with (the prompt registry seeds from these).

A user message is ``key: value`` lines (one value per line, which a real model reads
as a brief and the offline model parses), then a separator line and the material
(the lesson, or the answer to grade) verbatim.
"""

from __future__ import annotations

from typing import Any

QUIZ = "assessment.quiz"
QUIZ_VERSION = "1"
EXERCISE = "assessment.coding_exercise"
EXERCISE_VERSION = "1"
GRADE = "assessment.grade_answer"
GRADE_VERSION = "1"

SEPARATOR = "=== LESSON ==="

_QUIZ_SYSTEM = """You are Lectern, an expert teacher writing the quiz for one lesson of a
personalised course. Write in the learner's language ({language}) for a {level} learner.
Ask only about what the lesson teaches.
- multiple_choice: 3 to 5 questions, each with 4 options of which exactly one is correct;
  every option has an explanation of why it is right or wrong.
- open_questions: 1 or 2 short questions that need a sentence or two, each with a model
  answer and a rubric (2 to 4 criteria a good answer meets)."""

_EXERCISE_SYSTEM = """You are Lectern, an expert teacher writing a Python coding exercise
that practises one lesson of a personalised course, for a {level} learner; write the text in
the learner's language ({language}) and the code in Python 3.11 with the standard library only.
Difficulty: {difficulty}.
- statement: the task in markdown, naming the function(s) to write and their behaviour.
- starter_code: the signature(s) with docstrings and a body that raises NotImplementedError.
- reference_solution: a complete, correct solution.
- visible_tests and hidden_tests: Python source with top-level `def test_...():` functions
  using plain `assert`; they call the solution's functions by name (no imports of the
  solution needed). Hidden tests cover edge cases. Test names differ between the suites.
- hints: 1 to 3 hints that guide without giving the solution away.
The reference solution must pass every test and the starter code must fail at least one."""

_DIFFICULTY = {
    "easier": "easier than a standard exercise for this lesson: one small function, one idea",
    "standard": "standard for this lesson",
    "harder": "harder than a standard exercise for this lesson: more cases, an edge or two",
}

_GRADE_SYSTEM = """You are Lectern, a fair and encouraging examiner. Grade the learner's answer
to an open question against the model answer and the rubric. Score from 0 (wrong or missing)
to 1 (meets every criterion); partial answers get partial credit. Feedback: one to three
sentences in the learner's language ({language}), saying what was good and what was missing."""


def _flat(text: Any) -> str:
    """``text`` on one line: every brief value must stay on its ``key:`` line."""
    return " ".join(str(text).split())


def _profile(profile: dict[str, Any] | None) -> dict[str, str]:
    profile = profile or {}
    return {
        "language": str(profile.get("language") or "en"),
        "level": str(profile.get("level") or "beginner"),
    }


def _lesson_brief(lesson: dict[str, Any], **extra: Any) -> str:
    lines = [f"title: {_flat(lesson['title'])}", f"lesson_order: {lesson['position']}"]
    profile = _profile(lesson.get("profile"))
    topic = (lesson.get("profile") or {}).get("topic")
    if topic:
        lines.append(f"course_topic: {_flat(topic)}")
    lines += [f"level: {profile['level']}", f"language: {profile['language']}"]
    lines += [f"{key}: {_flat(value)}" for key, value in extra.items()]
    return "\n".join([*lines, SEPARATOR, lesson["markdown"]])


def quiz_messages(lesson: dict[str, Any]) -> list[dict[str, str]]:
    """Chat messages asking for the quiz of ``lesson`` (title, position, markdown, profile)."""
    system = _QUIZ_SYSTEM.format(**_profile(lesson.get("profile")))
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": _lesson_brief(lesson)},
    ]


def exercise_messages(
    lesson: dict[str, Any], difficulty: str, problem: str | None = None
) -> list[dict[str, str]]:
    """Chat messages asking for a coding exercise; ``problem`` says why the last one failed."""
    system = _EXERCISE_SYSTEM.format(
        **_profile(lesson.get("profile")), difficulty=_DIFFICULTY[difficulty]
    )
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": _lesson_brief(lesson, difficulty=difficulty)},
    ]
    if problem:
        messages.append(
            {
                "role": "user",
                "content": (
                    "Your previous exercise failed verification in the sandbox: "
                    f"{problem}\nWrite a new exercise that passes verification."
                ),
            }
        )
    return messages


def grade_messages(
    question: dict[str, Any], answer: str, profile: dict[str, Any] | None
) -> list[dict[str, str]]:
    """Chat messages asking for the grade of ``answer`` to an open ``question``."""
    system = _GRADE_SYSTEM.format(**_profile(profile))
    rubric = "; ".join(_flat(c) for c in question["rubric"])
    user = "\n".join(
        [
            f"question: {_flat(question['question'])}",
            f"reference_answer: {_flat(question['model_answer'])}",
            f"rubric: {rubric}",
            f"answer: {_flat(answer)}",
        ]
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
