"""A course's quizzes as Moodle XML: one question category per lesson.

Multiple-choice questions become ``multichoice`` (one right answer, ``fraction`` 100, the
others 0, each answer's explanation as its feedback); open questions become ``essay``
with the model answer and the rubric as information for graders. Texts are HTML
(``format="html"``): the stored plain text is HTML-escaped, its line breaks become
``<br>``, and the XML writer escapes the result again, so ``<``, ``&``, quotes and
braces reach Moodle as the learner should read them.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from typing import Any

from services.gateway.lms.course import (
    Unit,
    category_path,
    plain,
    question_name,
    right_option,
    units,
    xml_safe,
)

PENALTY = "0.3333333"  # Moodle's default for a wrong try, when a quiz allows several


def render_moodle_xml(
    course: dict[str, Any], lessons: list[dict[str, Any]], quizzes: list[dict[str, Any]]
) -> bytes:
    """The quizzes as a Moodle XML question bank (UTF-8), in course order."""
    root = ET.Element("quiz")
    for unit in units(course, lessons, quizzes):
        if unit.quiz is None:
            continue
        category = ET.SubElement(root, "question", type="category")
        _text(ET.SubElement(category, "category"), category_path(course, unit))
        _formatted(category, "info", to_html(unit.quiz.get("title") or ""))
        for number, question in enumerate(unit.quiz.get("questions") or [], 1):
            if question.get("kind") == "choice":
                _multichoice(root, unit, number, question)
            else:
                _essay(root, unit, number, question)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode()


def to_html(text: str) -> str:
    """Plain text as an HTML fragment that shows exactly that text."""
    return html.escape(plain(text), quote=False).replace("\n", "<br>\n")


def grader_info(question: dict[str, Any]) -> str:
    """The model answer and the rubric of an open question, as HTML for graders."""
    rubric = "".join(f"<li>{to_html(c)}</li>" for c in question.get("rubric") or [])
    return (
        f"<p><strong>Model answer</strong></p>\n<p>{to_html(question.get('model_answer', ''))}</p>"
        f"\n<p><strong>Rubric</strong></p>\n<ul>{rubric}</ul>"
    )


def _common(
    parent: ET.Element, kind: str, unit: Unit, number: int, question: dict[str, Any]
) -> ET.Element:
    element = ET.SubElement(parent, "question", type=kind)
    _text(ET.SubElement(element, "name"), question_name(unit, number, question))
    _formatted(element, "questiontext", to_html(question.get("question") or ""))
    _formatted(element, "generalfeedback", "")
    ET.SubElement(element, "defaultgrade").text = "1"
    ET.SubElement(element, "penalty").text = PENALTY if kind == "multichoice" else "0"
    ET.SubElement(element, "hidden").text = "0"
    quiz_id = str((unit.quiz or {}).get("quiz_id") or unit.number)
    idnumber = f"{quiz_id}-{question.get('question_id') or number}"
    ET.SubElement(element, "idnumber").text = xml_safe(idnumber[-100:])
    return element


def _multichoice(parent: ET.Element, unit: Unit, number: int, question: dict[str, Any]) -> None:
    element = _common(parent, "multichoice", unit, number, question)
    ET.SubElement(element, "single").text = "true"
    ET.SubElement(element, "shuffleanswers").text = "true"
    ET.SubElement(element, "answernumbering").text = "abc"
    ET.SubElement(element, "showstandardinstruction").text = "0"
    for tag in ("correctfeedback", "partiallycorrectfeedback", "incorrectfeedback"):
        _formatted(element, tag, "")
    right = right_option(question)
    for index, option in enumerate(question["options"]):
        fraction = "100" if index == right else "0"
        answer = ET.SubElement(element, "answer", fraction=fraction, format="html")
        _text(answer, to_html(option.get("text") or ""))
        _formatted(answer, "feedback", to_html(option.get("explanation") or ""))


def _essay(parent: ET.Element, unit: Unit, number: int, question: dict[str, Any]) -> None:
    element = _common(parent, "essay", unit, number, question)
    ET.SubElement(element, "responseformat").text = "editor"
    ET.SubElement(element, "responserequired").text = "1"
    ET.SubElement(element, "responsefieldlines").text = "10"
    ET.SubElement(element, "attachments").text = "0"
    ET.SubElement(element, "attachmentsrequired").text = "0"
    _formatted(element, "graderinfo", grader_info(question))
    _formatted(element, "responsetemplate", "")


def _formatted(parent: ET.Element, tag: str, html_text: str) -> None:
    _text(ET.SubElement(parent, tag, format="html"), html_text)


def _text(parent: ET.Element, value: str) -> None:
    ET.SubElement(parent, "text").text = xml_safe(value)
