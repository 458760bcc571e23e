"""Prompts the planner ships with (the prompt registry seeds from these)."""

from __future__ import annotations

from shared.contracts.planner import LearnerProfile

WELCOME_PLAN = "planner.welcome_plan"
WELCOME_PLAN_VERSION = "1"

_WELCOME_SYSTEM = """You are Lectern, an expert instructional designer.
Propose a personalised course plan for the learner described by the user.
Write in the learner's language ({language}). Use markdown: a title, two or three
sentences on how the course fits the learner, then "## Modules": a numbered list where
each module has a **bold title**, one sentence on what it covers, and its hours.
Fit the modules into {duration_hours} hours at a {pace} pace, for a {level} learner who
prefers {style} learning. End with one question inviting the learner to refine the plan."""


def _system(template: str, profile: LearnerProfile) -> str:
    return template.format(
        language=profile.language,
        duration_hours=profile.duration_hours,
        pace=profile.pace,
        level=profile.level,
        style=profile.style,
    )


def profile_text(profile: LearnerProfile) -> str:
    """The learner profile as ``key: value`` lines (the first user turn of every prompt)."""
    return "\n".join(
        [
            f"topic: {profile.topic}",
            f"level: {profile.level}",
            f"duration_hours: {profile.duration_hours:g}",
            f"expectations: {profile.expectations or '-'}",
            f"style: {profile.style}",
            f"pace: {profile.pace}",
            f"goal_context: {profile.goal_context}",
            f"language: {profile.language}",
        ]
    )


def welcome_messages(profile: LearnerProfile) -> list[dict[str, str]]:
    """Chat messages asking for the welcome plan of ``profile``."""
    return [
        {"role": "system", "content": _system(_WELCOME_SYSTEM, profile)},
        {"role": "user", "content": profile_text(profile)},
    ]


REFINE_PLAN = "planner.refine_plan"
REFINE_PLAN_VERSION = "1"

_REFINE_SYSTEM = """You are Lectern, an expert instructional designer, in a planning chat
with a learner. The first user message is the learner's profile; then comes the
conversation so far (older turns may be given as a summary) and the latest plan.
Answer the learner's newest message with the complete, updated plan in the same
markdown shape: a title, a short fit paragraph, "## Modules" as a numbered list where
each module has a **bold title**, one sentence and its hours, then "## Changes" listing
what you changed and why. Keep the total near {duration_hours} hours unless the learner
asks otherwise. Write in the learner's language ({language})."""

SUMMARISE_CHAT = "planner.summarise_chat"
SUMMARISE_CHAT_VERSION = "1"

_SUMMARISE_SYSTEM = """Summarise this course-planning conversation for the designer who
continues it. Keep every request and decision of the learner (what to add, drop,
shorten, emphasise) and any constraint they gave; drop pleasantries and the plans
themselves (the latest plan is kept separately). Use at most 12 short bullet points."""

FINALISE_MODULES = "planner.finalise_modules"
FINALISE_MODULES_VERSION = "1"

_FINALISE_SYSTEM = """You turn an agreed course plan into structured modules.
Use the latest plan (the assistant message) and the learner profile: one module per
module of the plan, in order, each with a title, a one-paragraph description, two to
five concrete learning objectives (verbs a learner can be checked on) and estimated
hours. Keep the plan's titles. Optionally give the course a short title."""


def refine_messages(
    profile: LearnerProfile,
    summary: str | None,
    history: list[dict[str, str]],
    request: str,
) -> list[dict[str, str]]:
    """The refinement prompt: profile, summary of older turns, recent turns, the request.

    ``history`` holds the recent turns verbatim (the latest plan among them).
    """
    messages = [
        {"role": "system", "content": _system(_REFINE_SYSTEM, profile)},
        {"role": "user", "content": profile_text(profile)},
    ]
    if summary:
        messages.append(
            {"role": "user", "content": f"Summary of the earlier conversation:\n{summary}"}
        )
    messages += history
    messages.append({"role": "user", "content": request})
    return messages


def summarise_messages(previous: str | None, turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """Ask for a summary of ``turns``, folding in the ``previous`` summary."""
    lines = []
    if previous:
        lines += ["Summary so far:", previous, ""]
    lines.append("Conversation to add:")
    for turn in turns:
        lines.append(f"{turn['role']}: {turn['content']}")
    return [
        {"role": "system", "content": _SUMMARISE_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


def finalise_messages(profile: LearnerProfile, plan: str) -> list[dict[str, str]]:
    """Ask for the modules of ``plan`` as JSON (the client appends the schema)."""
    return [
        {"role": "system", "content": _FINALISE_SYSTEM},
        {"role": "user", "content": profile_text(profile)},
        {"role": "assistant", "content": plan},
        {"role": "user", "content": "Turn the plan above into the course's modules."},
    ]
