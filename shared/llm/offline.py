"""The built-in offline model: deterministic answers for ``offline/*`` models.

``offline/lectern`` answers every Lectern task with well-formed, repeatable
output, so the whole system runs (and is tested) without an LLM provider.
The caller names the task in the first line of the first system message as
``[lectern-task: <task>]`` (see :func:`task_marker`; :class:`~shared.llm.LLMClient`
adds it for offline models only).

Tasks and their output:

- ``welcome_plan``: markdown plan, ``# <topic> — course plan`` then ``## Modules``
  with numbered lines ``1. **Title** — description (2 h)``;
- ``refine_plan``: the latest plan plus a ``## Changes`` section quoting the request;
- ``summarise_chat``: a short markdown summary;
- ``finalise_modules``: JSON ``{"modules": [{order, title, description,
  learning_objectives, estimated_hours}]}``;
- ``write_lesson``: markdown lesson with a mermaid flowchart, a python example
  for technical topics and ``## Knowledge check``;
- ``quiz``: JSON ``{"questions": [{question, options: [{text, correct,
  explanation}], correct_index}]}``;
- ``coding_exercise``: JSON ``{title, language, statement, starter_code,
  reference_solution, tests, hints}``;
- ``grade_answer``: JSON ``{score, feedback}``; ``recommendation``: JSON
  ``{action, reason}`` (action is ``review``, ``practice`` or ``advance``);
- ``revise_lesson``: the lesson plus ``## Revision notes``;
- ``write_grounded_lesson``, ``grounded_welcome_plan``, ``grounded_refine_plan``: the
  same from passages of the course's sources, citing them as ``[S<n>]``
  (:mod:`shared.llm.offline_grounded`).

Any other task gets a JSON instance of the schema when the system message
carries one (see :data:`JSON_SCHEMA_HEADER`), else a short echo.

Test hooks, written anywhere in a user message: ``[offline:invalid-json]``
makes JSON tasks answer truncated JSON every time; ``[offline:invalid-json-once]``
does so until a later user message asks for a repair; ``[offline:fail]`` raises
a non-retryable provider error. ``LECTERN_OFFLINE_LATENCY_MS`` (read per call)
adds simulated latency, overriding the value the client passes in metadata.

:func:`astream` is the model itself (chunks shaped as litellm's
``GenericStreamingChunk``); :class:`LLMClient` reads it directly. The same model is
litellm's provider ``offline`` too (:mod:`shared.llm.offline_litellm`), registered when
litellm loads. This module does not import litellm.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

PROVIDER = "offline"
LATENCY_ENV = "LECTERN_OFFLINE_LATENCY_MS"
LATENCY_METADATA_KEY = "lectern_offline_latency_ms"
# The structured-output instruction ends with this header and the JSON schema, so
# the offline model can answer schema-shaped JSON for tasks it does not know.
JSON_SCHEMA_HEADER = "JSON schema:"

HOOK_INVALID_JSON = "[offline:invalid-json]"
HOOK_INVALID_JSON_ONCE = "[offline:invalid-json-once]"
HOOK_FAIL = "[offline:fail]"

_MARKER_RE = re.compile(r"^\[lectern-task:\s*([^\]]*?)\s*\]\s*$")
_TECHNICAL_RE = re.compile(
    r"\b(python|code|coding|programming|program|sql|javascript|typescript|java|rust|go"
    r"|algorithms?|data\w*|software|api|developer|computer)\b",
    re.IGNORECASE,
)
_WORDS_PER_CHUNK = 3
JSON_TASKS = frozenset(
    {"finalise_modules", "quiz", "coding_exercise", "grade_answer", "recommendation"}
)


class OfflineFailure(Exception):
    """The failure ``[offline:fail]`` asks for: a provider's refusal (status 400), not
    retryable."""

    status_code = 400

    def __init__(self, message: str = "offline model failure requested") -> None:
        super().__init__(message)
        self.message = message


def task_marker(task: str) -> str:
    """The marker line naming ``task``: ``[lectern-task: <task>]``."""
    return f"[lectern-task: {task}]"


def read_task(messages: list[dict[str, Any]]) -> str | None:
    """The task named by the marker on the first line of the first system message."""
    for message in messages:
        if message.get("role") == "system":
            first_line = _text(message.get("content")).split("\n", 1)[0]
            match = _MARKER_RE.match(first_line.strip())
            return match.group(1) if match else None
    return None


def strip_task_marker(content: str) -> str:
    """``content`` without a leading task marker line."""
    first, _, rest = content.partition("\n")
    return rest if _MARKER_RE.match(first.strip()) else content


def count_tokens(text: str) -> int:
    """A rough token count: about four tokens for every three words."""
    words = len(text.split())
    return (words * 4 + 2) // 3


# --------------------------------------------------------------------------- helpers


def _text(content: Any) -> str:
    """Message content as text; multimodal parts contribute their text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _contents(messages: list[dict[str, Any]], role: str) -> list[str]:
    return [_text(m.get("content")) for m in messages if m.get("role") == role]


def _last(messages: list[dict[str, Any]], role: str, *, first: bool = False) -> str:
    found = _contents(messages, role)
    return (found[0] if first else found[-1]) if found else ""


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _digest(*parts: str) -> int:
    """A stable number from text (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:4], "big")


def _find_json_object(text: str) -> dict[str, Any] | None:
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_KV_RE = re.compile(r"^\s*(?:[-*]\s*)?([A-Za-z][\w \-]{0,40}?)\s*[:=]\s*(.*?)\s*$")


def parse_fields(text: str) -> dict[str, Any]:
    """Fields from a message that is JSON or ``key: value`` lines (keys normalised)."""
    fields: dict[str, Any] = {}
    found = _find_json_object(text)
    if found is not None:
        for key, value in found.items():
            fields[_norm_key(key)] = value
            # A nested profile ({"learner": {...}}) still counts.
            if isinstance(value, dict):
                for inner_key, inner in value.items():
                    fields.setdefault(_norm_key(inner_key), inner)
        return fields
    for line in text.splitlines():
        match = _KV_RE.match(line)
        if match and match.group(2):
            fields.setdefault(_norm_key(match.group(1)), match.group(2))
    return fields


def _norm_key(key: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _pick(fields: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = fields.get(name)
        if value not in (None, "", [], {}):
            return value
    return None


def _as_str(value: Any, default: str) -> str:
    if value is None:
        return default
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or default
    text = " ".join(str(value).split())
    return text or default


def _as_float(value: Any, default: float) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        return float(value)
    match = re.search(r"\d+(?:[.,]\d+)?", str(value or ""))
    return float(match.group(0).replace(",", ".")) if match else default


def _hours(value: float) -> float:
    """Hours rounded to the half hour, at least half an hour."""
    return max(0.5, round(value * 2) / 2)


def _fmt_hours(value: float) -> str:
    return f"{value:g}"


def _mermaid_label(text: str) -> str:
    return re.sub(r"[\[\]{}()<>\"|;#`]", "", text).strip()[:40] or "Idea"


@dataclass(frozen=True)
class Profile:
    """What the offline planner knows about the learner."""

    topic: str
    level: str
    duration_hours: float
    expectations: str
    language: str


def parse_profile(text: str) -> Profile:
    """The learner profile in ``text`` (JSON or ``key: value`` lines), with fallbacks."""
    fields = parse_fields(text)
    topic = _as_str(
        _pick(fields, "topic", "subject", "course", "course_topic", "title", "skill"), ""
    )
    if not topic:
        # A bare one-line request ("I want to learn Rust") still names a topic.
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
        topic = _one_line(first, 60) if first and len(first) <= 60 else "your subject"
    level = _as_str(_pick(fields, "level", "experience", "skill_level", "proficiency"), "")
    duration = _as_float(
        _pick(fields, "duration_hours", "duration", "hours", "time_budget", "total_hours"), 10.0
    )
    expectations = _as_str(
        _pick(fields, "expectations", "expectation", "goals", "goal", "objectives"), ""
    )
    language = _as_str(_pick(fields, "language", "lang", "locale"), "en")
    return Profile(
        topic=topic,
        level=level.lower() or "beginner",
        duration_hours=max(1.0, min(duration, 500.0)),
        expectations=expectations,
        language=language,
    )


# --------------------------------------------------------------------------- plans

_MODULE_TEMPLATES: list[tuple[str, str]] = [
    ("Foundations of {t}", "The core vocabulary and ideas everything else builds on."),
    ("Core concepts of {t}", "The central concepts, each with a small worked example."),
    ("Working with {t} in practice", "Hands-on exercises that turn concepts into skills."),
    ("Tools and workflows for {t}", "The everyday tools and a workflow that scales."),
    ("Common patterns in {t}", "Reusable patterns and when each one fits."),
    ("Pitfalls and troubleshooting in {t}", "Typical mistakes, how to spot and fix them."),
    ("{t} in real projects", "Applying what you learnt to realistic problems."),
]
_CAPSTONE = ("Capstone: your own {t} project", "A small project that ties the course together.")

_LEVEL_INTRO = {
    "beginner": "starts from first principles and assumes no prior knowledge",
    "intermediate": "builds on what you already know and fills the gaps",
    "advanced": "moves quickly to in-depth topics and trade-offs",
}


def module_count(duration_hours: float) -> int:
    """About one module per two hours, between 3 and 8."""
    return max(3, min(8, round(duration_hours / 2)))


def render_plan(profile: Profile) -> str:
    """The markdown course plan for ``profile``."""
    count = module_count(profile.duration_hours)
    per_module = _hours(profile.duration_hours / count)
    intro_level = _LEVEL_INTRO.get(profile.level, f"is pitched at a {profile.level} level")
    lines = [
        f"# {profile.topic} — course plan",
        "",
        f"This {_fmt_hours(profile.duration_hours)}-hour course on {profile.topic} {intro_level}.",
    ]
    if profile.expectations:
        lines.append(
            f'You said you expect: "{_one_line(profile.expectations, 200)}" — '
            "every module works towards that."
        )
    if profile.language.lower() not in ("en", "english", "en-gb", "en-us"):
        lines.append(f"Requested language: {profile.language}.")
    lines += ["", "## Modules", ""]
    templates = [*_MODULE_TEMPLATES[: count - 1], _CAPSTONE]
    for number, (title, description) in enumerate(templates, start=1):
        lines.append(
            f"{number}. **{title.format(t=profile.topic)}** — {description} "
            f"({_fmt_hours(per_module)} h)"
        )
    lines += ["", "Reply with any change you would like, or accept the plan to continue."]
    return "\n".join(lines) + "\n"


def _is_plan(text: str) -> bool:
    if "## Modules" in text:
        return True
    # Numbered lines alone could be a lesson's knowledge check.
    return len(_MODULE_LINE_RE.findall(text)) >= 2 and "Knowledge check" not in text


def _latest_plan(messages: list[dict[str, Any]]) -> str | None:
    """The latest plan: assistant messages first, then any message holding one."""
    for role in ("assistant", None):
        for message in reversed(messages):
            if role is not None and message.get("role") != role:
                continue
            if message.get("role") == "system":
                continue
            content = _text(message.get("content"))
            if _is_plan(content):
                return content
    return None


def refine_plan(messages: list[dict[str, Any]]) -> str:
    """The latest plan with a ``## Changes`` section quoting the last request."""
    request = _one_line(_last(messages, "user"), 300) or "no specific change"
    plan = _latest_plan(messages[:-1] if messages else messages)
    if plan is None:
        users = _contents(messages, "user")
        plan = render_plan(parse_profile(users[0] if users else ""))
    bullet = f'- Adjusted following your request: "{request}"'
    plan = plan.rstrip()
    if "\n## Changes" in plan:
        return f"{plan}\n{bullet}\n"
    return f"{plan}\n\n## Changes\n\n{bullet}\n"


def summarise_chat(messages: list[dict[str, Any]]) -> str:
    """A short summary of the conversation."""
    users = _contents(messages, "user")
    assistants = _contents(messages, "assistant")
    lines = [
        "## Conversation summary",
        "",
        f"- {len(users)} learner message(s) and {len(assistants)} answer(s).",
    ]
    if users:
        lines.append(f'- First request: "{_one_line(users[0], 160)}"')
    if len(users) > 1:
        lines.append(f'- Latest request: "{_one_line(users[-1], 160)}"')
    plan = _latest_plan(messages)
    if plan is not None:
        titles = [m["title"] for m in parse_modules(plan)]
        if titles:
            lines.append(f"- The current plan has {len(titles)} modules: {', '.join(titles)}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- modules

_MODULE_LINE_RE = re.compile(r"^\s*(\d{1,2})[.)]\s+(.+?)\s*$", re.MULTILINE)
# Em dash, en dash or hyphen: the separators people put between title and description.
_DASHES = "\u2014\u2013"
_HOURS_RE = re.compile(r"\(?\s*(\d+(?:[.,]\d+)?)\s*(?:h|hrs?|hours?)\b\.?\s*\)?", re.IGNORECASE)


def parse_modules(plan: str) -> list[dict[str, Any]]:
    """Numbered module lines of a plan as ``{title, description, hours}`` dicts."""
    section = plan
    if "## Modules" in plan:
        section = plan.split("## Modules", 1)[1]
        # Only the modules section: stop at the next heading.
        section = re.split(r"^#{1,6}\s", section, maxsplit=1, flags=re.MULTILINE)[0]
    modules: list[dict[str, Any]] = []
    for match in _MODULE_LINE_RE.finditer(section):
        body = match.group(2)
        hours_match = _HOURS_RE.search(body)
        hours = _as_float(hours_match.group(1), 2.0) if hours_match else None
        if hours_match:
            body = (body[: hours_match.start()] + body[hours_match.end() :]).strip()
        bold = re.match(rf"\*\*(.+?)\*\*\s*[{_DASHES}:-]?\s*(.*)", body)
        if bold:
            title, description = bold.group(1), bold.group(2)
        else:
            parts = re.split(rf"\s[{_DASHES}-]\s|:\s", body, maxsplit=1)
            title, description = parts[0], parts[1] if len(parts) > 1 else ""
        title = title.strip(" *")
        if title:
            modules.append({"title": title, "description": description.strip(), "hours": hours})
    return modules


def _objectives(title: str) -> list[str]:
    return [
        f"Explain the key ideas of {title}",
        f"Apply {title} to a short exercise",
        f"Recognise common mistakes in {title}",
    ]


def finalise_modules(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan's modules as structured data (four generated ones without a plan)."""
    plan = _latest_plan(messages)
    parsed = parse_modules(plan) if plan else []
    if not parsed:
        users = _contents(messages, "user")
        profile = parse_profile(users[0] if users else "")
        templates = [*_MODULE_TEMPLATES[:3], _CAPSTONE]
        hours = _hours(profile.duration_hours / len(templates))
        parsed = [
            {"title": t.format(t=profile.topic), "description": d, "hours": hours}
            for t, d in templates
        ]
    modules = []
    for order, module in enumerate(parsed, start=1):
        title = module["title"]
        modules.append(
            {
                "order": order,
                "title": title,
                "description": module["description"] or f"An introduction to {title}.",
                "learning_objectives": _objectives(title),
                "estimated_hours": module["hours"] if module["hours"] is not None else 2.0,
            }
        )
    return {"modules": modules}


# --------------------------------------------------------------------------- lessons


@dataclass(frozen=True)
class LessonBrief:
    """The module a lesson is written for."""

    title: str
    description: str
    topic: str
    objectives: list[str]
    level: str


def parse_lesson_brief(text: str) -> LessonBrief:
    """The module described in ``text`` (JSON or ``key: value`` lines)."""
    fields = parse_fields(text)
    module = fields.get("module")
    if isinstance(module, str) and "title" not in fields:
        fields["title"] = module
    title = _as_str(_pick(fields, "title", "module_title", "name", "lesson_title"), "")
    if not title:
        first = next((ln.strip("# ").strip() for ln in text.splitlines() if ln.strip()), "")
        title = _one_line(first, 80) or "Today's lesson"
    objectives_raw = _pick(fields, "learning_objectives", "objectives", "goals")
    if isinstance(objectives_raw, list):
        objectives = [_one_line(str(o), 160) for o in objectives_raw if str(o).strip()]
    elif isinstance(objectives_raw, str):
        objectives = [o.strip() for o in re.split(r"[;\n]", objectives_raw) if o.strip()]
    else:
        objectives = _objectives(title)
    return LessonBrief(
        title=title,
        description=_as_str(_pick(fields, "description", "summary", "module_description"), ""),
        topic=_as_str(_pick(fields, "course_topic", "topic", "course", "subject"), ""),
        objectives=objectives[:6] or _objectives(title),
        level=_as_str(_pick(fields, "level", "experience"), "beginner").lower(),
    )


def is_technical(text: str) -> bool:
    """Whether ``text`` looks like a programming or data topic."""
    return bool(_TECHNICAL_RE.search(text))


def _python_example(title: str) -> str:
    return (
        "```python\n"
        f"# A small, runnable illustration for: {_one_line(title, 60)}\n"
        "def summarise(values: list[float]) -> dict[str, float]:\n"
        '    """Count, total and mean of some numbers."""\n'
        "    total = sum(values)\n"
        "    count = len(values)\n"
        '    return {"count": count, "total": total, "mean": total / count if count else 0.0}\n'
        "\n"
        "\n"
        "print(summarise([2.0, 4.0, 6.0]))  # {'count': 3, 'total': 12.0, 'mean': 4.0}\n"
        "```"
    )


def write_lesson(brief: LessonBrief) -> str:
    """The markdown lesson for ``brief``."""
    subject = brief.topic or brief.title
    label = _mermaid_label(brief.title)
    lines = [f"# {brief.title}", ""]
    if brief.topic:
        lines += [f"*Part of the course on {brief.topic}.*", ""]
    lines += [
        "## Overview",
        "",
        (brief.description or f"This lesson introduces {brief.title}.")
        + f" It is written for a {brief.level} learner and takes one idea at a time, "
        "each followed by a short example.",
        "",
        "## Learning objectives",
        "",
        *[f"- {objective}" for objective in brief.objectives],
        "",
        "## Key ideas",
        "",
        f"{brief.title} rests on a few ideas. First, name the problem it solves; "
        "second, learn the smallest working example; third, vary that example until "
        "you can predict what changes.",
        "",
        "Keep notes of the questions you have while reading: they are the best guide to "
        "what to practise next.",
        "",
    ]
    if is_technical(f"{brief.title} {brief.description} {subject}"):
        lines += [
            "## Worked example",
            "",
            "The snippet below is small enough to type out and run yourself:",
            "",
            _python_example(brief.title),
            "",
        ]
    lines += [
        "## How it fits together",
        "",
        "```mermaid",
        "flowchart TD",
        f"    A[Problem] --> B[{label}]",
        "    B --> C[Small example]",
        "    C --> D[Practice]",
        "    D --> E[Confident use]",
        "```",
        "",
        "## Summary",
        "",
        f"You met the key ideas of {brief.title}, saw how they fit together and know "
        "what to practise next.",
        "",
        "## Knowledge check",
        "",
        f"1. **What problem does {brief.title} help you solve?**",
        f"   *Answer:* It gives a structured way to approach {subject}.",
        "2. **What is the first step when you meet a new idea?**",
        "   *Answer:* Find the smallest working example and run it.",
        "3. **How do you know you have understood it?**",
        "   *Answer:* You can change the example and predict the result.",
    ]
    return "\n".join(lines) + "\n"


def revise_lesson(messages: list[dict[str, Any]]) -> str:
    """The lesson from the conversation with a ``## Revision notes`` section."""
    last_user = _last(messages, "user")
    fields = parse_fields(last_user)
    lesson_field = fields.get("lesson")
    assistant_lessons = [c for c in _contents(messages, "assistant") if c.lstrip().startswith("#")]
    if isinstance(lesson_field, str) and lesson_field.strip():
        lesson, feedback = lesson_field, _as_str(_pick(fields, "feedback", "request"), "")
    elif assistant_lessons:
        lesson, feedback = assistant_lessons[-1], last_user
    elif "\n# " in f"\n{last_user}":
        # The lesson is inside the user message, after whatever introduces it.
        start = f"\n{last_user}".index("\n# ")
        lesson = last_user[max(0, start - 1) :]
        feedback = last_user[: max(0, start - 1)]
    else:
        lesson = write_lesson(parse_lesson_brief(last_user))
        feedback = ""
    lesson = lesson.split("\n## Revision notes", 1)[0].rstrip()
    note = _one_line(feedback, 300) if feedback.strip() else "general clarity"
    return (
        f"{lesson}\n\n## Revision notes\n\n"
        f'- Revised in response to: "{note}"\n'
        "- Clarified the key ideas and kept the examples short.\n"
    )


# --------------------------------------------------------------------------- assessment


_MATERIAL_RE = re.compile(r"^=== [^=\n]+ ===$", re.MULTILINE)


def _brief_part(text: str) -> str:
    """The ``key: value`` part of a message, before a ``=== ... ===`` material line."""
    match = _MATERIAL_RE.search(text)
    return text[: match.start()] if match else text


def quiz(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A quiz about the lesson in the last user message: multiple choice and open questions."""
    text = _brief_part(_last(messages, "user"))
    fields = parse_fields(text)
    brief = parse_lesson_brief(text)
    count = int(
        _as_float(_pick(fields, "num_questions", "number_of_questions", "question_count"), 3)
    )
    count = max(1, min(count, 10))
    subject = brief.title
    stems = [
        (
            f"What is the best first step when learning {subject}?",
            "Run the smallest working example",
            [
                "Memorise every detail first",
                "Skip the basics",
                "Read only the summary",
            ],
        ),
        (
            f"How can you check that you understood {subject}?",
            "Change an example and predict the result",
            ["Re-read the title", "Count the headings", "Ask nobody"],
        ),
        (
            f"Why does {subject} matter?",
            "It gives a structured way to solve a class of problems",
            ["It never matters", "Only for exams", "It replaces all practice"],
        ),
        (
            "What should you do with questions that come up while reading?",
            "Note them and use them to guide practice",
            ["Ignore them", "Wait until the end of the course", "Delete your notes"],
        ),
    ]
    questions = []
    for number in range(count):
        question, correct, wrong = stems[number % len(stems)]
        if number >= len(stems):
            question = f"{question} (variant {number // len(stems) + 1})"
        # Spread the right answer over the positions, but the same way every time.
        correct_index = (_digest(subject) + number) % 4
        texts = list(wrong)
        texts.insert(correct_index, correct)
        options = [
            {
                "text": option,
                "correct": index == correct_index,
                "explanation": (
                    "Correct: this is the approach the lesson recommends."
                    if index == correct_index
                    else f'Not quite: "{option}" does not build real understanding.'
                ),
            }
            for index, option in enumerate(texts)
        ]
        questions.append({"question": question, "options": options})
    open_questions = [
        {
            "question": f"In a sentence or two: how would you start practising {subject}?",
            "model_answer": (
                "Start from the smallest working example, run it, then change one thing "
                "at a time and predict the result before running it again."
            ),
            "rubric": [
                "Starts from a small working example",
                "Changes the example step by step",
                "Predicts the result before checking it",
            ],
        }
    ]
    return {
        "title": f"Quiz: {subject}",
        "multiple_choice": questions,
        "open_questions": open_questions,
    }


_STARTER = (
    "def summarise(values: list[float]) -> dict[str, float]:\n"
    '    """Return the count, total and mean of ``values`` (mean 0.0 when empty)."""\n'
    "    raise NotImplementedError\n"
)
_SOLUTION = (
    "def summarise(values: list[float]) -> dict[str, float]:\n"
    '    """Return the count, total and mean of ``values`` (mean 0.0 when empty)."""\n'
    "    total = float(sum(values))\n"
    "    count = len(values)\n"
    '    return {"count": count, "total": total, "mean": total / count if count else 0.0}\n'
)


def _exercise_tests(*tests: tuple[str, str]) -> str:
    return "\n\n".join(f"def {name}():\n{body}" for name, body in tests) + "\n"


_EXERCISES: dict[str, dict[str, Any]] = {
    "easier": {
        "title": "adding up a list",
        "statement": (
            "write `total(values)` that returns the sum of a list of numbers as a float "
            "(0.0 for an empty list)."
        ),
        "starter": (
            "def total(values: list[float]) -> float:\n"
            '    """Return the sum of ``values`` as a float (0.0 when empty)."""\n'
            "    raise NotImplementedError\n"
        ),
        "solution": (
            "def total(values: list[float]) -> float:\n"
            '    """Return the sum of ``values`` as a float (0.0 when empty)."""\n'
            "    return float(sum(values))\n"
        ),
        "visible": _exercise_tests(
            ("test_total_of_three", "    assert total([1, 2, 3]) == 6.0\n"),
        ),
        "hidden": _exercise_tests(
            ("test_total_empty", "    assert total([]) == 0.0\n"),
            ("test_total_negative", "    assert total([-1, 1, -2]) == -2.0\n"),
        ),
        "hints": ["`sum()` adds up a list.", "Convert the result with `float()`."],
    },
    "standard": {
        "title": "summarising data",
        "statement": (
            "write `summarise(values)` that returns a dict with the `count`, `total` and "
            "`mean` of a list of numbers. An empty list has mean 0.0."
        ),
        "starter": _STARTER,
        "solution": _SOLUTION,
        "visible": _exercise_tests(
            (
                "test_several_values",
                "    result = summarise([2, 4, 6])\n"
                '    assert result["count"] == 3\n'
                '    assert result["total"] == 12.0\n'
                '    assert result["mean"] == 4.0\n',
            ),
        ),
        "hidden": _exercise_tests(
            (
                "test_empty",
                '    assert summarise([]) == {"count": 0, "total": 0.0, "mean": 0.0}\n',
            ),
            ("test_negative_values", '    assert summarise([-1, 1])["mean"] == 0.0\n'),
        ),
        "hints": [
            "`sum()` and `len()` do most of the work.",
            "Guard against dividing by zero for an empty list.",
            "Return floats for `total` and `mean`.",
        ],
    },
    "harder": {
        "title": "summarising messy data",
        "statement": (
            "write `summarise(values)` that ignores `None` entries and returns a dict with "
            "the `count`, `mean` and `median` of the remaining numbers (both 0.0 when none "
            "remain)."
        ),
        "starter": (
            "def summarise(values: list[float | None]) -> dict[str, float]:\n"
            '    """Count, mean and median of the numbers in ``values`` (None skipped)."""\n'
            "    raise NotImplementedError\n"
        ),
        "solution": (
            "def summarise(values: list[float | None]) -> dict[str, float]:\n"
            '    """Count, mean and median of the numbers in ``values`` (None skipped)."""\n'
            "    numbers = sorted(v for v in values if v is not None)\n"
            "    count = len(numbers)\n"
            "    if not count:\n"
            '        return {"count": 0, "mean": 0.0, "median": 0.0}\n'
            "    middle = count // 2\n"
            "    if count % 2:\n"
            "        median = float(numbers[middle])\n"
            "    else:\n"
            "        median = (numbers[middle - 1] + numbers[middle]) / 2\n"
            '    return {"count": count, "mean": sum(numbers) / count, "median": median}\n'
        ),
        "visible": _exercise_tests(
            (
                "test_odd_count",
                "    result = summarise([3, 1, 2])\n"
                '    assert result == {"count": 3, "mean": 2.0, "median": 2.0}\n',
            ),
        ),
        "hidden": _exercise_tests(
            ("test_even_count", '    assert summarise([4, 1, 3, 2])["median"] == 2.5\n'),
            ("test_skips_none", '    assert summarise([None, 5, None])["count"] == 1\n'),
            (
                "test_only_none",
                '    assert summarise([None]) == {"count": 0, "mean": 0.0, "median": 0.0}\n',
            ),
        ),
        "hints": [
            "Filter out `None` first, then sort.",
            "An even count has two middle values: average them.",
        ],
    },
}


def coding_exercise(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A small Python exercise with a reference solution and visible and hidden tests."""
    text = _brief_part(_last(messages, "user", first=True))
    brief = parse_lesson_brief(text)
    difficulty = str(_pick(parse_fields(text), "difficulty") or "standard").lower()
    spec = _EXERCISES.get(difficulty, _EXERCISES["standard"])
    return {
        "title": f"Exercise: {spec['title']} ({brief.title})",
        "language": "python",
        "statement": f"As practice for {brief.title}, {spec['statement']}",
        "starter_code": spec["starter"],
        "reference_solution": spec["solution"],
        "visible_tests": spec["visible"],
        "hidden_tests": spec["hidden"],
        "hints": spec["hints"],
    }


def grade_answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A score in 0..1 from word overlap with the expected answer, with feedback."""
    text = _last(messages, "user")
    fields = parse_fields(text)
    answer = _as_str(_pick(fields, "answer", "learner_answer", "student_answer", "response"), "")
    expected = _as_str(
        _pick(fields, "expected", "expected_answer", "reference", "reference_answer", "correct"),
        "",
    )
    answer_words = set(re.findall(r"\w+", answer.lower()))
    if expected:
        expected_words = set(re.findall(r"\w+", expected.lower()))
        score = len(answer_words & expected_words) / max(1, len(expected_words))
    else:
        score = min(1.0, len(answer_words) / 30)
    score = round(max(0.0, min(1.0, score)), 2)
    if score >= 0.8:
        feedback = "Excellent: your answer covers the key points."
    elif score >= 0.5:
        feedback = "Good start: you have the main idea, but some key points are missing."
    elif answer_words:
        feedback = "Not yet: revisit the lesson and compare your answer with its key ideas."
    else:
        feedback = "No answer was given."
    return {"score": score, "feedback": feedback}


def recommendation(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What the learner should do next, from the score in the last user message."""
    text = _last(messages, "user")
    fields = parse_fields(text)
    raw = _pick(fields, "score", "average_score", "mean_score", "result")
    score = _as_float(raw, 0.5)
    if score > 1:
        score /= 100  # a percentage
    if score < 0.5:
        return {
            "action": "review",
            "reason": f"A score of {score:.0%} suggests reviewing the lesson before moving on.",
        }
    if score < 0.8:
        return {
            "action": "practice",
            "reason": f"A score of {score:.0%} shows the basics; more practice will fix them.",
        }
    return {
        "action": "advance",
        "reason": f"A score of {score:.0%} shows the module is mastered; move to the next one.",
    }


# --------------------------------------------------------------------------- schema-shaped


def _schema_from_system(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    system = "\n".join(_contents(messages, "system"))
    if JSON_SCHEMA_HEADER not in system:
        return None
    return _find_json_object(system.rsplit(JSON_SCHEMA_HEADER, 1)[1])


def example_for_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None, depth: int = 0
) -> Any:
    """A small deterministic instance of a JSON schema (pydantic's dialect)."""
    root = root if root is not None else schema
    if depth > 8:
        return None
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return example_for_schema(root.get("$defs", {}).get(name, {}), root, depth + 1)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_for_schema(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: example_for_schema(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items", {})
        count = max(1, int(schema.get("minItems", 1)))
        return [example_for_schema(items, root, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    if kind == "string":
        text = str(schema.get("title") or "text")
        return text.ljust(int(schema.get("minLength", 0)), "x")
    return None


# --------------------------------------------------------------------------- dispatch

_TEXT_TASKS: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "welcome_plan": lambda msgs: render_plan(parse_profile(_last(msgs, "user"))),
    "refine_plan": refine_plan,
    "summarise_chat": summarise_chat,
    "write_lesson": lambda msgs: write_lesson(parse_lesson_brief(_last(msgs, "user"))),
    "revise_lesson": revise_lesson,
}


def _grounded(name: str) -> Callable[[list[dict[str, Any]]], str]:
    """A grounded task (``offline_grounded`` imports this module: import it late)."""

    def run(messages: list[dict[str, Any]]) -> str:
        from shared.llm import offline_grounded

        return str(getattr(offline_grounded, name)(messages))

    return run


for _task in ("write_grounded_lesson", "grounded_welcome_plan", "grounded_refine_plan"):
    _TEXT_TASKS[_task] = _grounded(_task)

_JSON_TASKS: dict[str, Callable[[list[dict[str, Any]]], dict[str, Any]]] = {
    "finalise_modules": finalise_modules,
    "quiz": quiz,
    "coding_exercise": coding_exercise,
    "grade_answer": grade_answer,
    "recommendation": recommendation,
}


def _wants_broken_json(messages: list[dict[str, Any]]) -> bool:
    users = _contents(messages, "user")
    if any(HOOK_INVALID_JSON in u for u in users):
        return True
    for index, content in enumerate(users):
        if HOOK_INVALID_JSON_ONCE in content:
            # Broken until a later user message asks for a repair.
            return not any("repair" in later.lower() for later in users[index + 1 :])
    return False


def _broken(text: str) -> str:
    # Cutting a JSON object in half always leaves it unclosed.
    return text[: max(1, len(text) // 2)]


def generate(messages: list[dict[str, Any]]) -> str:
    """The offline model's complete answer to ``messages``.

    Raises:
        OfflineFailure: (status 400) when a user message holds ``[offline:fail]``.
    """
    if any(HOOK_FAIL in u for u in _contents(messages, "user")):
        raise OfflineFailure()
    task = read_task(messages)
    if task in _TEXT_TASKS:
        return _TEXT_TASKS[task](messages)
    schema = _schema_from_system(messages)
    if task in _JSON_TASKS or schema is not None:
        value = _JSON_TASKS[task](messages) if task in _JSON_TASKS else None
        if value is None and schema is not None:
            value = example_for_schema(schema)
        text = json.dumps(value, ensure_ascii=False, indent=2)
        return _broken(text) if _wants_broken_json(messages) else text
    last = _one_line(_last(messages, "user"), 500)
    label = f"task {task!r}" if task else "no task"
    return (
        f'Offline model ({label}). You said: "{last}"\n'
        if last
        else (f"Offline model ({label}). How can I help?\n")
    )


def split_pieces(text: str, words: int = _WORDS_PER_CHUNK) -> list[str]:
    """``text`` in pieces of a few words; joining them gives ``text`` back."""
    tokens = re.findall(r"\s+|\S+\s*", text)
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(_text(m.get("content")) for m in messages)


def latency_s(requested_ms: Any = 0) -> float:
    """Seconds an answer takes: ``LECTERN_OFFLINE_LATENCY_MS`` when set, else the
    caller's ``requested_ms``."""
    raw = os.environ.get(LATENCY_ENV)
    if raw is None or not raw.strip():
        raw = requested_ms
    try:
        return max(0.0, float(raw)) / 1000
    except (TypeError, ValueError):
        return 0.0


def _usage(messages: list[dict[str, Any]], text: str) -> dict[str, int]:
    prompt = count_tokens(_prompt_text(messages))
    completion = count_tokens(text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def answer(messages: list[dict[str, Any]]) -> tuple[str, dict[str, int]]:
    """The whole answer to ``messages`` and its usage (``prompt_tokens``,
    ``completion_tokens``, ``total_tokens``)."""
    text = generate(messages)
    return text, _usage(messages, text)


def chunks(text: str, usage: dict[str, int]) -> list[dict[str, Any]]:
    """``text`` as streamed chunks of a few words (litellm's ``GenericStreamingChunk``
    shape), then a last one that finishes the stream and carries ``usage``."""
    out: list[dict[str, Any]] = [
        {
            "text": piece,
            "is_finished": False,
            "finish_reason": "",
            "usage": None,
            "index": 0,
            "tool_use": None,
        }
        for piece in split_pieces(text)
    ]
    out.append(
        {
            "text": "",
            "is_finished": True,
            "finish_reason": "stop",
            "usage": {**usage},
            "index": 0,
            "tool_use": None,
        }
    )
    return out


async def astream(
    messages: list[dict[str, Any]], latency_s: float
) -> AsyncIterator[dict[str, Any]]:
    """The answer to ``messages`` as :func:`chunks` over ``latency_s`` seconds.

    Raises:
        OfflineFailure: when a user message holds ``[offline:fail]``.
    """
    text, usage = answer(messages)
    async for chunk in apaced(chunks(text, usage), latency_s):
        yield chunk


async def apaced(pieces: list[dict[str, Any]], latency_s: float) -> AsyncIterator[dict[str, Any]]:
    """``pieces`` on :func:`_schedule`'s times over ``latency_s`` seconds."""
    due = _schedule(latency_s, len(pieces))
    for chunk, at in zip(pieces, due, strict=True):
        # always yields control, so consumers see a real interleaved stream
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        yield chunk


def paced(pieces: list[dict[str, Any]], latency_s: float) -> Iterator[dict[str, Any]]:
    """:func:`apaced`, blocking."""
    due = _schedule(latency_s, len(pieces))
    for chunk, at in zip(pieces, due, strict=True):
        time.sleep(max(0.0, at - time.monotonic()))
        yield chunk


def _schedule(total_s: float, chunks: int) -> list[float]:
    """When each chunk is due (``time.monotonic()``): a third of the latency before the
    first, the rest spread evenly, the last at ``total_s``.

    Fixed times, as a server streams at its own pace: a consumer that is slow to take a
    chunk delays its reading, not the model's answer (a pause after each chunk would add
    the consumer's time to every gap and stretch a 1 s answer by its processing)."""
    start = time.monotonic()
    if total_s <= 0 or chunks < 1:
        return [start] * chunks
    if chunks == 1:
        return [start + total_s]
    first = total_s / 3
    step = (total_s - first) / (chunks - 1)
    return [start + first + i * step for i in range(chunks)]
