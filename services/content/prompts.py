"""Variables of the content service's prompts; the templates are in ``shared.llm.library``.

The user message of a lesson is ``key: value`` lines (one value per line), which a
real model reads as a brief and the offline model parses (``parse_lesson_brief``).
A revision is a conversation: the brief, the current lesson as the assistant's
answer, then the learner's feedback as the last user message.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.content import WriteLessonPayload
from shared.contracts.planner import LearnerProfile

WRITE_LESSON = "content.write_lesson"
WRITE_GROUNDED_LESSON = "content.write_grounded_lesson"
REVISE_LESSON = "content.revise_lesson"

# The profile's choices as the phrases the system prompts use (``style``, ``pace``, ``goal``).
_STYLE = {
    "theory": "explanations and the reasoning behind them, with examples to anchor them",
    "practice": "hands-on examples and exercises, with just enough theory to use them",
    "mixed": "a balance of explanation and hands-on examples",
}
_PACE = {
    "intensive": "dense and fast: assume focus, skip repetition",
    "moderate": "steady: one idea at a time, each followed by an example",
    "relaxed": "gentle: small steps, recaps and plenty of examples",
}
_GOAL = {
    "academic": "for study or an exam: precise terms and definitions matter",
    "corporate": "for work: tie ideas to workplace tasks and team practice",
    "personal": "for their own interest: keep it engaging and practical",
}


def _flat(text: str) -> str:
    """``text`` on one line: every brief value must stay on its ``key:`` line."""
    return " ".join(str(text).split())


def _learner(profile: LearnerProfile) -> dict[str, Any]:
    """The learner's profile as the system prompts' variables: choices among fixed options
    only (the learner's own words, like their expectations, stay in the brief)."""
    return {
        "language": profile.language,
        "level": profile.level,
        "style": _STYLE[profile.style],
        "pace": _PACE[profile.pace],
        "goal": _GOAL[profile.goal_context],
    }


def lesson_brief(brief: WriteLessonPayload) -> str:
    """The user message describing the module, the course and the learner."""
    module, profile = brief.module, brief.profile
    lines = [
        f"title: {_flat(module.title)}",
        f"course_topic: {_flat(profile.topic)}",
        f"course_title: {_flat(brief.course_title)}",
        f"module_order: {module.order} of {max(len(brief.outline), module.order)}",
    ]
    if module.description.strip():
        lines.append(f"description: {_flat(module.description)}")
    lines += [
        f"learning_objectives: {'; '.join(_flat(o) for o in module.learning_objectives)}",
        f"estimated_hours: {module.estimated_hours:g}",
        f"level: {profile.level}",
        f"style: {profile.style}",
        f"pace: {profile.pace}",
        f"goal_context: {profile.goal_context}",
        f"language: {profile.language}",
        f"expectations: {_flat(profile.expectations) or '-'}",
    ]
    if brief.outline:
        # last: outline lines may look like "key: value" to a parser; earlier keys win
        lines.append("outline:")
        lines += [
            f"  {number}. {_flat(title)}{'  <- this lesson' if number == module.order else ''}"
            for number, title in enumerate(brief.outline, start=1)
        ]
    return "\n".join(lines)


def write_variables(brief: WriteLessonPayload) -> dict[str, Any]:
    """Variables of ``content.write_lesson``: the lesson of ``brief.module``."""
    return {
        **_learner(brief.profile),
        "hours": brief.module.estimated_hours,
        "brief": lesson_brief(brief),
    }


def revise_variables(
    brief: WriteLessonPayload, lesson_markdown: str, feedback: str
) -> dict[str, Any]:
    """Variables of ``content.revise_lesson``: rewrite ``lesson_markdown`` after ``feedback``."""
    return {
        **_learner(brief.profile),
        "brief": lesson_brief(brief),
        "lesson": lesson_markdown,
        "feedback": feedback,
    }


def write_grounded_variables(brief: WriteLessonPayload, sources: str) -> dict[str, Any]:
    """Variables of ``content.write_grounded_lesson``: the lesson, from ``sources`` (the
    passages as :func:`shared.citations.format_passages` lists them)."""
    return {**write_variables(brief), "sources": sources}


def retrieval_query(brief: WriteLessonPayload) -> str:
    """What to look up in the course's sources for the lesson of ``brief.module``."""
    module = brief.module
    parts = [module.title, module.description, *module.learning_objectives]
    return _flat(". ".join(p for p in parts if p.strip()))[:2000]
