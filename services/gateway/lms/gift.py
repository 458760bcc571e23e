"""A course's quizzes in GIFT, Moodle's plain-text question format.

One ``$CATEGORY:`` per lesson, then its questions, each a block of lines with a blank
line after it. Multiple choice: ``::name::[plain]question{ =right#why ~wrong#why }``;
open questions are essays (``{}``) whose general feedback (``####``) holds the model
answer and the rubric, as GIFT has no place for information only graders see.

Escaping follows Moodle's own GIFT writer: ``\\``, ``~ = # { } :`` get a backslash and a
line break becomes ``\\n``, so every question stays one block. Texts are ``[plain]``:
Moodle shows ``<``, ``&`` and quotes as written instead of reading them as HTML. Two
spots where Moodle would read a text as markup get a prefix that it strips again: an
answer starting with ``%50%`` would be a weight (``%0%`` is written before it), and a
text starting with ``[html]`` would be a format (``[plain]`` is written before it).
"""

from __future__ import annotations

import re
from typing import Any

from services.gateway.lms.course import (
    category_path,
    course_title,
    one_line,
    plain,
    question_name,
    right_option,
    units,
)

_RESERVED = str.maketrans(
    {"\\": "\\\\", "~": "\\~", "=": "\\=", "#": "\\#", "{": "\\{", "}": "\\}", ":": "\\:"}
)
_WEIGHT = re.compile(r"%-*[0-9]{1,2}\.?[0-9]*%")


def render_gift(
    course: dict[str, Any], lessons: list[dict[str, Any]], quizzes: list[dict[str, Any]]
) -> str:
    """The quizzes as one GIFT file, in course order."""
    blocks = [f"// {course_title(course)}: quizzes exported from Lectern (GIFT, UTF-8)"]
    for unit in units(course, lessons, quizzes):
        if unit.quiz is None:
            continue
        title = one_line(unit.quiz.get("title") or "")
        blocks.append(
            f"// Lesson {unit.order}: {unit.title} ({title})\n"
            f"$CATEGORY: {category_path(course, unit)}"
        )
        for number, question in enumerate(unit.quiz.get("questions") or [], 1):
            name = f"::{escape(question_name(unit, number, question))}::"
            text = "[plain]" + escape(plain(question.get("question")))
            if question.get("kind") == "choice":
                blocks.append(f"{name}{text}{{\n{_choices(question)}}}")
            else:
                blocks.append(f"{name}{text}{{####{_text(essay_feedback(question))}}}")
    return "\n\n".join(blocks) + "\n"


def escape(text: str) -> str:
    """``text`` with GIFT's special characters escaped and line breaks as ``\\n``."""
    return plain(text).translate(_RESERVED).replace("\n", "\\n")


def essay_feedback(question: dict[str, Any]) -> str:
    """What an open question's general feedback says: the model answer, then the rubric."""
    rubric = "\n".join(f"- {one_line(c)}" for c in question.get("rubric") or [])
    return f"Model answer: {plain(question.get('model_answer'))}\n\nRubric:\n{rubric}"


def _choices(question: dict[str, Any]) -> str:
    right = right_option(question)
    lines = []
    for index, option in enumerate(question["options"]):
        answer = _text(option.get("text"))
        if index == right:
            mark = "="
        else:  # a wrong answer starting like a weight would be read as one
            mark = "~%0%" if _WEIGHT.match(answer) else "~"
        lines.append(f"\t{mark}{answer}#{_text(option.get('explanation'))}\n")
    return "".join(lines)


def _text(text: object) -> str:
    escaped = escape(plain(text))
    return "[plain]" + escaped if escaped.startswith("[") else escaped
