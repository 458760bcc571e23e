"""A course as a SCORM 1.2 package: one SCO per lesson, its quiz score reported to the LMS.

The zip holds ``imsmanifest.xml`` at its root (ADL SCORM 1.2 content packaging: one
organization, one item per written lesson, each pointing at a ``sco`` resource), a page
per lesson at ``lessons/NN/index.html`` and the files the pages share under ``shared/``
(``scorm_api.js``, the stylesheet and, when a lesson has a diagram, the vendored mermaid
library with the script that starts it). The pages render offline like the HTML export
(same markdown rendering, raw HTML escaped) and allow only scripts of the package itself
(CSP ``script-src 'self'``). Links to files that are not in the package lose their
``href``; links out open in a new window, so the SCO stays open in the LMS.

The quiz's answer key is in the page (``data-answer``): multiple choice is graded in the
browser, which the package's owner is exporting for their own LMS. The manifest names no
XSD files (``xsi:schemaLocation``), so the zip needs none: LMSs import it without them.
"""

from __future__ import annotations

import html
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from functools import cache
from typing import Any

from services.gateway.export import MERMAID_JS, render_fragment, stylesheet
from services.gateway.lms.course import (
    Unit,
    course_title,
    one_line,
    plain,
    right_option,
    units,
    xml_safe,
)
from services.gateway.lms.scorm_assets import (
    DIAGRAMS_JS,
    MASTERY_PERCENT,
    QUIZ_CSS,
    SCORM_API_JS,
)

IMSCP_NS = "http://www.imsproject.org/xsd/imscp_rootv1p1p2"
ADLCP_NS = "http://www.adlnet.org/xsd/adlcp_rootv1p2"
MANIFEST = "imsmanifest.xml"
API_JS = "shared/scorm_api.js"
STYLESHEET = "shared/lesson.css"
MERMAID = "shared/mermaid.min.js"
DIAGRAMS = "shared/diagrams.js"
ORGANIZATION = "LECTERN-ORG"
SHARED_RESOURCE = "RES-SHARED"
_TITLE_MAX = 200  # imscp titleType
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same course gives the same bytes
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src data:; font-src data:"
)
_LINK = re.compile(r"<a\b([^>]*)>")
_HREF = re.compile(r'\s+href="([^"]*)"')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Sco:
    """One lesson page of the package."""

    unit: Unit
    href: str
    page: str
    diagrams: bool

    @property
    def item_id(self) -> str:
        return f"ITEM-{self.unit.number}"

    @property
    def resource_id(self) -> str:
        return f"RES-{self.unit.number}"


def build_package(
    course: dict[str, Any], lessons: list[dict[str, Any]], quizzes: list[dict[str, Any]]
) -> bytes:
    """The SCORM 1.2 zip: manifest, one SCO per written lesson, the shared files."""
    written = [u for u in units(course, lessons, quizzes) if u.lesson is not None]
    scos = [_sco(course, unit, i, len(written)) for i, unit in enumerate(written, 1)]
    shared: dict[str, str | bytes] = {
        API_JS: SCORM_API_JS,
        STYLESHEET: stylesheet() + QUIZ_CSS,
    }
    if any(s.diagrams for s in scos):
        shared[DIAGRAMS] = DIAGRAMS_JS
        shared[MERMAID] = _mermaid()
    files: dict[str, str | bytes] = {MANIFEST: manifest(course, scos, list(shared))}
    files.update({s.href: s.page for s in scos})
    files.update(shared)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def manifest(course: dict[str, Any], scos: list[Sco], shared: list[str]) -> str:
    """``imsmanifest.xml``: metadata, one organization of items, their resources."""
    # Namespace declarations written as plain attributes: ElementTree's own prefixes
    # (ns0, ...) would do, but LMSs and people read ``adlcp:`` more easily.
    root = ET.Element(
        "manifest",
        {
            "identifier": "LECTERN-"
            + re.sub(r"[^A-Za-z0-9._-]", "-", str(course.get("course_id"))),
            "version": "1.0",
            "xmlns": IMSCP_NS,
            "xmlns:adlcp": ADLCP_NS,
        },
    )
    metadata = ET.SubElement(root, "metadata")
    ET.SubElement(metadata, "schema").text = "ADL SCORM"
    ET.SubElement(metadata, "schemaversion").text = "1.2"
    organizations = ET.SubElement(root, "organizations", default=ORGANIZATION)
    organization = ET.SubElement(organizations, "organization", identifier=ORGANIZATION)
    ET.SubElement(organization, "title").text = _title(course_title(course))
    for sco in scos:
        item = ET.SubElement(
            organization,
            "item",
            identifier=sco.item_id,
            identifierref=sco.resource_id,
            isvisible="true",
        )
        ET.SubElement(item, "title").text = _title(sco.unit.title)
        if _choices(sco.unit):
            ET.SubElement(item, "adlcp:masteryscore").text = str(MASTERY_PERCENT)
    resources = ET.SubElement(root, "resources")
    for sco in scos:
        resource = ET.SubElement(
            resources,
            "resource",
            {
                "identifier": sco.resource_id,
                "type": "webcontent",
                "adlcp:scormtype": "sco",
                "href": sco.href,
            },
        )
        ET.SubElement(resource, "file", href=sco.href)
        ET.SubElement(resource, "dependency", identifierref=SHARED_RESOURCE)
    common = ET.SubElement(
        resources,
        "resource",
        {"identifier": SHARED_RESOURCE, "type": "webcontent", "adlcp:scormtype": "asset"},
    )
    for name in shared:
        ET.SubElement(common, "file", href=name)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def quiz_form(quiz: dict[str, Any]) -> str:
    """The quiz as an HTML form: radio buttons with the key in ``data-answer``, text areas."""
    esc = html.escape
    parts = [
        '<section class="quiz" aria-labelledby="quiz-title">',
        f'<h2 id="quiz-title">{esc(one_line(quiz.get("title") or "Quiz"))}</h2>',
        f'<form id="lectern-quiz" data-quiz-id="{esc(str(quiz.get("quiz_id") or ""))}">',
    ]
    for n, question in enumerate(quiz.get("questions") or [], 1):
        legend = f"<legend>{n}. {_text_html(question.get('question'))}</legend>"
        if question.get("kind") == "choice":
            right = right_option(question)
            parts.append(
                f'<fieldset class="question" data-kind="choice" data-answer="{right}">{legend}'
            )
            for i, option in enumerate(question["options"]):
                verdict = "Right" if i == right else "Not quite"
                parts.append(
                    f'<div class="option"><label><input type="radio" name="q{n}" value="{i}">'
                    f"<span>{_text_html(option.get('text'))}</span></label>"
                    f'<p class="feedback" hidden>{verdict}: '
                    f"{_text_html(option.get('explanation'))}</p></div>"
                )
        else:
            rubric = "".join(f"<li>{_text_html(c)}</li>" for c in question.get("rubric") or [])
            parts.append(
                f'<fieldset class="question" data-kind="open">{legend}'
                f'<textarea name="q{n}" rows="4" aria-label="Your answer"></textarea>'
                '<div class="model-answer" hidden><p><strong>Model answer:</strong> '
                f"{_text_html(question.get('model_answer'))}</p>"
                f"<p><strong>A good answer:</strong></p><ul>{rubric}</ul></div>"
            )
        parts.append("</fieldset>")
    parts += [
        '<button type="submit">Submit answers</button>',
        '<p class="result" role="status" aria-live="polite"></p>',
        "</form>",
        "</section>",
    ]
    return "\n".join(parts) + "\n"


def _sco(course: dict[str, Any], unit: Unit, number: int, count: int) -> Sco:
    esc = html.escape
    body = _links(render_fragment(plain((unit.lesson or {}).get("markdown"))))
    if not body.lstrip().startswith("<h1"):
        body = f"<h1>{esc(unit.title)}</h1>\n{body}"
    diagrams = '<pre class="mermaid">' in body
    quiz = quiz_form(unit.quiz) if unit.quiz and unit.quiz.get("questions") else ""
    scripts = [MERMAID, DIAGRAMS] if diagrams else []
    tags = "".join(f'<script src="../../{name}"></script>\n' for name in [*scripts, API_JS])
    head = (
        f'<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="Lectern">\n<title>{esc(unit.title)}</title>\n'
        f'<link rel="stylesheet" href="../../{STYLESHEET}">\n'
    )
    where = f"{esc(course_title(course))} · Lesson {number} of {count}"
    page = (
        f'<!DOCTYPE html>\n<html lang="{_language(course)}">\n<head>\n{head}</head>\n<body>\n'
        f'<main>\n<p class="course-line">{where}</p>\n<article class="lesson">\n{body}'
        f"</article>\n{quiz}</main>\n{tags}</body>\n</html>\n"
    )
    return Sco(unit, f"lessons/{unit.number}/index.html", page, diagrams)


def _links(fragment: str) -> str:
    """Links within the lesson that lead nowhere in the package lose their ``href``."""

    def fix(match: re.Match[str]) -> str:
        attrs = match[1]
        href = _HREF.search(attrs)
        if href is None or href[1].startswith("#"):
            return match[0]
        if not _SCHEME.match(href[1]):  # relative: the file is not in the package
            return "<a" + _HREF.sub("", attrs, count=1) + ">"
        web = href[1].lower().startswith(("http:", "https:"))
        if web and "target=" not in attrs:  # out of the LMS: keep the SCO (and its session) open
            attrs += ' target="_blank"' + ("" if "rel=" in attrs else ' rel="noopener"')
        return f"<a{attrs}>"

    return _LINK.sub(fix, fragment)


def _choices(unit: Unit) -> bool:
    questions = (unit.quiz or {}).get("questions") or []
    return any(q.get("kind") == "choice" for q in questions)


def _text_html(text: object) -> str:
    return html.escape(plain(text)).replace("\n", "<br>")


def _title(text: str) -> str:
    text = xml_safe(one_line(text))
    return text if len(text) <= _TITLE_MAX else text[: _TITLE_MAX - 1] + "…"


def _language(course: dict[str, Any]) -> str:
    language = str((course.get("profile") or {}).get("language") or "en")
    return language if re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*", language) else "en"


@cache
def _mermaid() -> bytes:
    return MERMAID_JS.read_bytes()
