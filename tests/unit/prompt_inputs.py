"""Inputs for the "same messages as before templates" check (``test_templates.py``).

``legacy_prompts.json`` holds the messages the services' hand-built prompts produced
for these inputs before the prompts became templates (captured once, from the code
of commit f2b5a96). Each case names the template, the call and its arguments.

Two deliberate changes since, both for the learner's words being data
(``tests/unit/test_prompt_injection.py``): the expectations left the lesson prompts'
system message (they were quoted there as ``- hopes to: "..."``; the brief in the user
message carries them), and the planner's profile lines are flattened to one line each.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.content import WriteLessonPayload
from shared.contracts.course import ModuleSpec
from shared.contracts.planner import LearnerProfile

FULL = LearnerProfile(
    topic="Python asyncio {and} friends",
    level="intermediate",
    duration_hours=12.5,
    expectations="Write a concurrent\n  web scraper {fast}",
    style="practice",
    pace="intensive",
    goal_context="corporate",
    language="de",
)
WHOLE_HOURS = LearnerProfile(
    topic="Statistics",
    level="advanced",
    duration_hours=10,
    style="theory",
    pace="relaxed",
    goal_context="academic",
)
MINIMAL = LearnerProfile(topic="Chess")

HISTORY = [
    {"role": "assistant", "content": "# Plan\n\n## Modules\n1. **Openings** - 2h"},
    {"role": "user", "content": "Shorter, {please}"},
    {"role": "assistant", "content": "# Plan v2\n\n## Modules\n1. **Openings** - 1h"},
    {"role": "user", "content": "Add endgames"},
]
PLAN = "# Chess\n\n## Modules\n1. **Openings**: first moves, 2 hours\n2. **Endgames**: 3 hours"

OUTLINE = ["Why asyncio", "Coroutines and the event loop", "Tasks and cancellation"]


def brief(profile: LearnerProfile, *, outline: bool, description: str) -> WriteLessonPayload:
    """A write_lesson brief for module 2 (module 5 of 3 when there is no outline)."""
    module = ModuleSpec(
        module_id="c-1:m2",
        order=2 if outline else 5,
        title="Coroutines and\n the event loop",
        description=description,
        learning_objectives=["Explain what await does", "Run two coroutines {concurrently}"],
        estimated_hours=2.0 if outline else 1.25,
    )
    return WriteLessonPayload(
        course_id="c-1",
        course_title="Python asyncio",
        module=module,
        outline=OUTLINE if outline else [],
        profile=profile,
    )


BRIEFS = {
    "full": brief(FULL, outline=True, description="How async def and\nawait fit together."),
    "bare": brief(MINIMAL, outline=False, description="  "),
    "theory": brief(WHOLE_HOURS, outline=True, description="Means and medians."),
}
LESSON_MARKDOWN = "# Lists\n\n## Overview\n\n```python\nprint({1: 2})\n```\n\n## Knowledge check\n"


def lesson(profile: dict[str, Any] | None) -> dict[str, Any]:
    """A lesson as the assessment service holds it."""
    return {
        "lesson_id": "c-1:l3",
        "course_id": "c-1",
        "position": 3,
        "title": "Lists and\n loops",
        "markdown": LESSON_MARKDOWN,
        "profile": profile,
    }


LESSONS = {
    "profile": lesson(FULL.model_dump(mode="json")),
    "no_topic": lesson({"level": "advanced", "language": "fr"}),
    "no_profile": lesson(None),
}
QUESTION = {
    "question_id": "q4",
    "kind": "open",
    "question": "Why use\n a list comprehension?",
    "model_answer": "It is {short} and clear.",
    "rubric": ["Mentions brevity", "Mentions\nreadability"],
}

# case id -> (template, legacy function, arguments)
CASES: dict[str, tuple[str, str, tuple[Any, ...]]] = {
    "welcome_full": ("planner.welcome_plan", "welcome", (FULL,)),
    "welcome_whole_hours": ("planner.welcome_plan", "welcome", (WHOLE_HOURS,)),
    "welcome_minimal": ("planner.welcome_plan", "welcome", (MINIMAL,)),
    "refine_summary": ("planner.refine_plan", "refine", (FULL, "so far {x}", HISTORY, "Less")),
    "refine_no_summary": ("planner.refine_plan", "refine", (MINIMAL, None, HISTORY[:2], "x")),
    "refine_empty": ("planner.refine_plan", "refine", (WHOLE_HOURS, "", [], "Start over")),
    "summarise_first": ("planner.summarise_chat", "summarise", (None, HISTORY)),
    "summarise_again": ("planner.summarise_chat", "summarise", ("- wants {short}", HISTORY[:1])),
    "finalise_full": ("planner.finalise_modules", "finalise", (FULL, PLAN)),
    "finalise_minimal": ("planner.finalise_modules", "finalise", (MINIMAL, PLAN)),
    "write_full": ("content.write_lesson", "write", (BRIEFS["full"],)),
    "write_bare": ("content.write_lesson", "write", (BRIEFS["bare"],)),
    "write_theory": ("content.write_lesson", "write", (BRIEFS["theory"],)),
    "revise_full": ("content.revise_lesson", "revise", (BRIEFS["full"], PLAN, "More {code}")),
    "revise_bare": ("content.revise_lesson", "revise", (BRIEFS["bare"], "# L", "x\ny")),
    "quiz_profile": ("assessment.quiz", "quiz", (LESSONS["profile"],)),
    "quiz_no_topic": ("assessment.quiz", "quiz", (LESSONS["no_topic"],)),
    "quiz_no_profile": ("assessment.quiz", "quiz", (LESSONS["no_profile"],)),
    "exercise_standard": (
        "assessment.coding_exercise",
        "exercise",
        (LESSONS["profile"], "standard", None),
    ),
    "exercise_easier_retry": (
        "assessment.coding_exercise",
        "exercise",
        (LESSONS["no_topic"], "easier", "the reference solution fails tests (test_a: {x})"),
    ),
    "exercise_harder": (
        "assessment.coding_exercise",
        "exercise",
        (LESSONS["no_profile"], "harder", ""),
    ),
    "grade_profile": (
        "assessment.grade_answer",
        "grade",
        (QUESTION, "Because\nit is short {really}", FULL.model_dump(mode="json")),
    ),
    "grade_no_profile": ("assessment.grade_answer", "grade", (QUESTION, "x", None)),
}
