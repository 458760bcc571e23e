"""What every LMS export needs from a course: its units in order and their names.

A unit is one position of the course: the module's title, the latest version of its
lesson and the quiz written for it (either may be missing while the course is written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Unit:
    """One position of the course, with what has been written for it so far."""

    order: int
    title: str
    lesson: dict[str, Any] | None
    quiz: dict[str, Any] | None

    @property
    def number(self) -> str:
        """The position as used in names and paths: ``01``, ``02``, ..."""
        return f"{self.order:02d}"


def units(
    course: dict[str, Any], lessons: list[dict[str, Any]], quizzes: list[dict[str, Any]]
) -> list[Unit]:
    """Every position that has a lesson or a quiz, in course order, titled by its module."""
    latest: dict[int, dict[str, Any]] = {}
    for lesson in lessons:
        order = int(lesson["order"])
        if order not in latest or lesson.get("version", 0) > latest[order].get("version", 0):
            latest[order] = lesson
    by_order = {int(q["order"]): q for q in quizzes}
    titles = {int(m["order"]): m.get("title") for m in course.get("modules") or []}
    found = []
    for order in sorted(latest.keys() | by_order.keys()):
        lesson, quiz = latest.get(order), by_order.get(order)
        title = titles.get(order) or (lesson or {}).get("title") or f"Lesson {order}"
        found.append(Unit(order, one_line(title), lesson, quiz))
    return found


def course_title(course: dict[str, Any]) -> str:
    """The course's title on one line."""
    return one_line(course.get("title") or "Course")


def category_path(course: dict[str, Any], unit: Unit) -> str:
    """The Moodle question category for a unit's quiz: course, then the numbered lesson.

    A ``/`` inside a name is written ``//``: Moodle splits the path on single slashes.
    """
    names = [course_title(course), f"{unit.number}. {unit.title}"]
    return "$course$/top/" + "/".join(name.replace("/", "//") for name in names)


def question_name(unit: Unit, number: int, question: dict[str, Any]) -> str:
    """A short, unique name for a question in a question bank: position, number, its start."""
    text = one_line(question.get("question") or "")
    if len(text) > 60:
        text = text[:59].rstrip() + "…"
    return f"{unit.number}.{number} {text}".rstrip()


def right_option(question: dict[str, Any]) -> int:
    """The index of the correct option of a multiple-choice question (the first, if several)."""
    return next((i for i, o in enumerate(question["options"]) if o.get("correct")), 0)


def one_line(text: object) -> str:
    """``text`` with every run of whitespace, newlines included, as one space."""
    return " ".join(str(text).split())


def xml_safe(text: str) -> str:
    """``text`` without the control characters XML 1.0 cannot carry (escaping is the writer's)."""
    return _NOT_XML.sub("", text)


def plain(text: object) -> str:
    """A stored text as an export writes it: newlines normalised, outer whitespace trimmed."""
    return str(text or "").replace("\r\n", "\n").replace("\r", "\n").strip()
