"""Prompts the content service ships with (the prompt registry seeds from these).

The user message of a lesson is ``key: value`` lines (one value per line), which a
real model reads as a brief and the offline model parses (``parse_lesson_brief``).
A revision is a conversation: the brief, the current lesson as the assistant's
answer, then the learner's feedback as the last user message.
"""

from __future__ import annotations

from shared.contracts.content import WriteLessonPayload
from shared.contracts.planner import LearnerProfile

WRITE_LESSON = "content.write_lesson"
WRITE_LESSON_VERSION = "1"
REVISE_LESSON = "content.revise_lesson"
REVISE_LESSON_VERSION = "1"

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

_FORMAT_RULES = """Format: markdown only, no preamble.
- Start with "# <lesson title>", then "## Overview" (how this lesson serves the learner's goal)
  and "## Learning objectives" (the module's objectives as a list).
- Teach in content blocks: one "## " section per idea, short paragraphs, concrete examples.
- Where the topic involves code, include worked code examples in fenced code blocks that
  name their language, each small enough to run and followed by what it shows.
- Where you explain a structure or a process, include at least one mermaid diagram in a
  ```mermaid fence (flowchart, sequence or class diagram); keep node labels short, without
  brackets or quotes.
- End with "## Summary" and then "## Knowledge check": 3 to 5 numbered questions, each
  followed on the next line by its answer as "*Answer:* ..."."""

_LEARNER = """The learner:
- level: {level}
- learning {goal}
- prefers {style}
- pace: {pace}
{expectations}"""

_WRITE_SYSTEM = (
    """You are Lectern, an expert teacher writing one lesson of a personalised course.
Write the lesson for the module the user describes, in the learner's language ({language}).
"""
    + _LEARNER
    + """Aim for about {hours:g} hours of study. Stay within this module: the course outline
shows what the other modules cover, so build on earlier ones and do not pre-empt later ones.

"""
    + _FORMAT_RULES
)

_REVISE_SYSTEM = (
    """You are Lectern, an expert teacher revising a lesson of a personalised course.
The user described the module, you wrote the lesson (your previous answer), and the learner
has now given feedback (the last message). Rewrite the whole lesson so that it answers the
feedback, keeping what already works. Write in the learner's language ({language}).
"""
    + _LEARNER
    + "\n"
    + _FORMAT_RULES
    + """
After the knowledge check add "## Revision notes": a short list of what changed and why."""
)


def _flat(text: str) -> str:
    """``text`` on one line: every brief value must stay on its ``key:`` line."""
    return " ".join(str(text).split())


def _learner(profile: LearnerProfile) -> dict[str, str]:
    """The learner's profile as the system prompts' variables."""
    expectations = profile.expectations.strip()
    return {
        "language": profile.language,
        "level": profile.level,
        "style": _STYLE[profile.style],
        "pace": _PACE[profile.pace],
        "goal": _GOAL[profile.goal_context],
        "expectations": f'- hopes to: "{_flat(expectations)}"\n' if expectations else "",
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


def write_messages(brief: WriteLessonPayload) -> list[dict[str, str]]:
    """Chat messages asking for the lesson of ``brief.module``."""
    system = _WRITE_SYSTEM.format(**_learner(brief.profile), hours=brief.module.estimated_hours)
    return [{"role": "system", "content": system}, {"role": "user", "content": lesson_brief(brief)}]


def revise_messages(
    brief: WriteLessonPayload, lesson_markdown: str, feedback: str
) -> list[dict[str, str]]:
    """Chat messages asking to rewrite ``lesson_markdown`` following ``feedback``."""
    system = _REVISE_SYSTEM.format(**_learner(brief.profile))
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": lesson_brief(brief)},
        {"role": "assistant", "content": lesson_markdown},
        # the feedback alone: the model (and the offline one's revision notes) quote it
        {"role": "user", "content": feedback},
    ]
