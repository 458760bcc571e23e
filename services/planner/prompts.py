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


def welcome_messages(profile: LearnerProfile) -> list[dict[str, str]]:
    """Chat messages asking for the welcome plan of ``profile``."""
    system = _WELCOME_SYSTEM.format(
        language=profile.language,
        duration_hours=profile.duration_hours,
        pace=profile.pace,
        level=profile.level,
        style=profile.style,
    )
    user = "\n".join(
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
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
