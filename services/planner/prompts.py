"""Variables of the planner's prompts; the templates are in ``shared.llm.library``.

Every prompt starts from the learner profile as ``key: value`` lines (which the
offline model parses); the instructions are the templates' and a prompt engineer's.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.planner import LearnerProfile

WELCOME_PLAN = "planner.welcome_plan"
REFINE_PLAN = "planner.refine_plan"
SUMMARISE_CHAT = "planner.summarise_chat"
FINALISE_MODULES = "planner.finalise_modules"
GROUNDED_WELCOME_PLAN = "planner.grounded_welcome_plan"
GROUNDED_REFINE_PLAN = "planner.grounded_refine_plan"


def _flat(text: str) -> str:
    """``text`` on one line: a value (the learner's words) cannot start a line of its own."""
    return " ".join(text.split())


def profile_text(profile: LearnerProfile) -> str:
    """The learner profile as ``key: value`` lines (the first user turn of every prompt)."""
    return "\n".join(
        [
            f"topic: {_flat(profile.topic)}",
            f"level: {profile.level}",
            f"duration_hours: {profile.duration_hours:g}",
            f"expectations: {_flat(profile.expectations) or '-'}",
            f"style: {profile.style}",
            f"pace: {profile.pace}",
            f"goal_context: {profile.goal_context}",
            f"language: {profile.language}",
        ]
    )


def welcome_variables(profile: LearnerProfile) -> dict[str, Any]:
    """Variables of ``planner.welcome_plan`` for ``profile``."""
    return {
        "language": profile.language,
        # as the learner gave it ("10.0"): the shipped prompt has always said so
        "duration_hours": str(profile.duration_hours),
        "pace": profile.pace,
        "level": profile.level,
        "style": profile.style,
        "profile": profile_text(profile),
    }


def refine_variables(
    profile: LearnerProfile,
    summary: str | None,
    history: list[dict[str, str]],
    request: str,
) -> dict[str, Any]:
    """Variables of ``planner.refine_plan``: profile, summary of older turns, recent turns,
    the learner's request.

    ``history`` holds the recent turns verbatim (the latest plan among them).
    """
    return {
        "duration_hours": str(profile.duration_hours),
        "language": profile.language,
        "profile": profile_text(profile),
        "summary": (
            [{"role": "user", "content": f"Summary of the earlier conversation:\n{summary}"}]
            if summary
            else []
        ),
        "history": list(history),
        "request": request,
    }


def summarise_variables(previous: str | None, turns: list[dict[str, str]]) -> dict[str, Any]:
    """Variables of ``planner.summarise_chat``: ``turns`` to fold into the ``previous``
    summary."""
    return {
        "summary": f"Summary so far:\n{previous}\n\n" if previous else "",
        "conversation": "\n".join(_turn(turn) for turn in turns),
    }


def _turn(turn: dict[str, str]) -> str:
    """One ``role: content`` line of a transcript; a learner's turn is kept on its line so
    it cannot forge a turn of its own (``assistant: ...``)."""
    content = _flat(turn["content"]) if turn["role"] == "user" else turn["content"]
    return f"{turn['role']}: {content}"


def finalise_variables(profile: LearnerProfile, plan: str) -> dict[str, Any]:
    """Variables of ``planner.finalise_modules``: the agreed ``plan`` and the learner."""
    return {"profile": profile_text(profile), "plan": plan}


def grounded_welcome_variables(profile: LearnerProfile, sources: str) -> dict[str, Any]:
    """Variables of ``planner.grounded_welcome_plan``: the welcome plan, from ``sources``
    (passages as :func:`shared.citations.format_passages` lists them)."""
    return {**welcome_variables(profile), "sources": sources}


def grounded_refine_variables(
    profile: LearnerProfile,
    summary: str | None,
    history: list[dict[str, str]],
    request: str,
    sources: str,
) -> dict[str, Any]:
    """Variables of ``planner.grounded_refine_plan``: as ``planner.refine_plan``, plus the
    passages of the course's sources."""
    return {**refine_variables(profile, summary, history, request), "sources": sources}


def plan_query(profile: LearnerProfile, request: str | None = None) -> str:
    """What to look up in the course's sources for a plan (and the learner's request)."""
    parts = [profile.topic, profile.expectations, request or ""]
    return _flat(". ".join(part for part in parts if part.strip()))
