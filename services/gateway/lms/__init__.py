"""LMS exports of a course: a SCORM 1.2 package, and its quizzes as Moodle XML or GIFT.

Each format is a pure function of the course (planner), its lessons (content) and its
quizzes with their answer keys (assessment ``export_quizzes``), returning the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.gateway.lms.gift import render_gift
from services.gateway.lms.moodle import render_moodle_xml
from services.gateway.lms.scorm import build_package

Render = Callable[[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]], bytes]


@dataclass(frozen=True)
class LmsFormat:
    """How one format is served: media type, file extension, renderer, what it cannot lack."""

    media_type: str
    extension: str
    render: Render
    needs: str  # "lesson" (pages) or "quiz" (question banks): without one there is no file


def _gift(course: dict[str, Any], lessons: list[Any], quizzes: list[Any]) -> bytes:
    return render_gift(course, lessons, quizzes).encode()


FORMATS: dict[str, LmsFormat] = {
    "scorm": LmsFormat("application/zip", "zip", build_package, "lesson"),
    "moodle": LmsFormat("application/xml", "xml", render_moodle_xml, "quiz"),
    # .txt: Moodle's GIFT import expects a text file
    "gift": LmsFormat("text/plain; charset=utf-8", "gift.txt", _gift, "quiz"),
}
