"""Variables of the assessment service's prompts; the templates are in ``shared.llm.library``.

A user message is ``key: value`` lines (one value per line, which a real model reads
as a brief and the offline model parses), then the material (the lesson, or the
answer to grade) verbatim.
"""

from __future__ import annotations

from typing import Any

QUIZ = "assessment.quiz"
EXERCISE = "assessment.coding_exercise"
GRADE = "assessment.grade_answer"

# the difficulty asked for, as the phrase the exercise prompt uses
_DIFFICULTY = {
    "easier": "easier than a standard exercise for this lesson: one small function, one idea",
    "standard": "standard for this lesson",
    "harder": "harder than a standard exercise for this lesson: more cases, an edge or two",
}


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
    return "\n".join(lines)


def quiz_variables(lesson: dict[str, Any]) -> dict[str, Any]:
    """Variables of ``assessment.quiz`` for ``lesson`` (title, position, markdown, profile)."""
    return {
        **_profile(lesson.get("profile")),
        "brief": _lesson_brief(lesson),
        "lesson": lesson["markdown"],
    }


def exercise_variables(
    lesson: dict[str, Any], difficulty: str, problem: str | None = None
) -> dict[str, Any]:
    """Variables of ``assessment.coding_exercise``; ``problem`` says why the last one failed."""
    verification = (
        [
            {
                "role": "user",
                "content": (
                    "Your previous exercise failed verification in the sandbox: "
                    f"{problem}\nWrite a new exercise that passes verification."
                ),
            }
        ]
        if problem
        else []
    )
    return {
        **_profile(lesson.get("profile")),
        "difficulty": _DIFFICULTY[difficulty],
        "brief": _lesson_brief(lesson, difficulty=difficulty),
        "lesson": lesson["markdown"],
        "verification": verification,
    }


def grade_variables(
    question: dict[str, Any], answer: str, profile: dict[str, Any] | None
) -> dict[str, Any]:
    """Variables of ``assessment.grade_answer``: ``answer`` to an open ``question``."""
    return {
        "language": _profile(profile)["language"],
        "question": _flat(question["question"]),
        "reference_answer": _flat(question["model_answer"]),
        "rubric": "; ".join(_flat(c) for c in question["rubric"]),
        "answer": _flat(answer),
    }
