"""Coding exercises: write one with the LLM, verify it in the sandbox, regenerate if needed.

Verified means the sandbox ran both suites (visible and hidden) against the reference
solution, which passed every test, and against the starter code, which failed at
least one. An exercise still unverified after ``MAX_GENERATIONS`` is kept, marked
unverified with the reason, rather than failing the lesson's assessment.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from services.assessment import prompts
from services.assessment.drafts import ExerciseDraft
from services.assessment.sandbox import RunResult, Sandbox
from shared.contracts.base import Message
from shared.generation import PromptedLLM, complete

MAX_GENERATIONS = 3
_FENCE_RE = re.compile(r"^```([\w+#.-]*)", re.MULTILINE)
_NOT_CODE = {"", "mermaid", "text", "txt", "markdown", "md", "console", "output", "plaintext"}
_PYTHON = {"python", "py", "python3", "pycon", "ipython"}


def code_languages(markdown: str) -> set[str]:
    """Languages of the lesson's code blocks (diagrams and plain text excluded)."""
    return {m.lower() for m in _FENCE_RE.findall(markdown)} - _NOT_CODE


def exercise_plan(markdown: str) -> tuple[bool, str]:
    """Whether the lesson gets a coding exercise, and if not, why (for the learner)."""
    languages = code_languages(markdown)
    if languages & _PYTHON:
        return True, ""
    if languages:
        names = ", ".join(sorted(languages))
        return False, f"The lesson's code is in {names}; exercises are run and verified in Python."
    return False, "The lesson has no code, so it has a quiz but no coding exercise."


@dataclass
class WrittenExercise:
    """An exercise as written and checked, ready to be stored."""

    draft: ExerciseDraft
    verified: bool
    note: str
    runs: list[dict[str, Any]]
    generations: int
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    problems: list[str] = field(default_factory=list)


def suites(visible_tests: str, hidden_tests: str) -> dict[str, str]:
    """An exercise's test suites as the sandbox takes them, visible first."""
    return {"visible": visible_tests, "hidden": hidden_tests}


def _failing(result: RunResult) -> str:
    bad = [t for t in result.tests if t.status != "passed"]
    return "; ".join(f"{t.name}: {t.message or t.status}" for t in bad[:3])


async def check(draft: ExerciseDraft, sandbox: Sandbox) -> tuple[str | None, list[dict[str, Any]]]:
    """Run the reference solution and the starter code; the problem found, or None."""
    tests = suites(draft.visible_tests, draft.hidden_tests)
    try:
        reference, starter = await asyncio.gather(
            sandbox.run(draft.reference_solution, tests),
            sandbox.run(draft.starter_code, tests),
        )
    except ValueError as exc:  # too many tests, sources too big: the draft's fault
        return f"the exercise cannot be run: {exc}", []
    runs = [
        {"code": "reference_solution", **reference.to_json()},
        {"code": "starter_code", **starter.to_json()},
    ]
    if reference.status != "completed":
        return f"the reference solution did not run to the end: {reference.reason}", runs
    if not reference.all_passed:
        return f"the reference solution fails tests ({_failing(reference)})", runs
    if starter.status == "syntax_error":
        return f"the starter code does not run: {starter.reason}", runs
    if starter.status != "completed":
        return f"the starter code hit a sandbox limit: {starter.reason}", runs
    if starter.all_passed:
        return "the starter code already passes every test, so the tests check nothing", runs
    return None, runs


async def write_exercise(
    deps: PromptedLLM,
    origin: Message,
    sandbox: Sandbox,
    lesson: dict[str, Any],
    *,
    difficulty: str,
) -> WrittenExercise:
    """Write an exercise for ``lesson`` and verify it, regenerating a bounded number of times."""
    problem: str | None = None
    written: WrittenExercise | None = None
    for generation in range(1, MAX_GENERATIONS + 1):
        draft, result = await complete(
            deps,
            task="coding_exercise",
            prompt=prompts.EXERCISE,
            variables=prompts.exercise_variables(lesson, difficulty, problem),
            subject=lesson["course_id"],
            step=f"exercise:{lesson['position']}",
            schema=ExerciseDraft,
            job_id=origin.job_id,
            course_id=lesson["course_id"],
        )
        problem, runs = await check(draft, sandbox)
        previous = written
        written = WrittenExercise(
            draft=draft,
            verified=problem is None,
            note=""
            if problem is None
            else f"Unverified after {generation} generation(s): {problem}.",
            runs=runs,
            generations=generation,
            model=result.model,
            input_tokens=result.input_tokens + (previous.input_tokens if previous else 0),
            output_tokens=result.output_tokens + (previous.output_tokens if previous else 0),
            problems=[*(previous.problems if previous else []), *([problem] if problem else [])],
        )
        if problem is None:
            break
    assert written is not None
    return written
