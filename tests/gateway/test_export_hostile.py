"""Model output is data in every export: no script, handler or dangerous URL gets through.

What a model writes (lessons, titles, quiz questions, options, explanations) is fed
back with every trick the web knows for running code from a link or a tag; each
export (HTML, a SCORM page, Moodle XML, GIFT) must show it as text. URLs are read
the way a browser reads them (tabs and newlines dropped, case ignored, entities
decoded) before their scheme is checked.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from io import BytesIO
from typing import Any

import pytest

from services.gateway.export import render_html
from services.gateway.lms import build_package, render_gift, render_moodle_xml

XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
HOSTILE_MARKDOWN = f"""# Lesson

[a](javascript:alert(1)) [b](JaVaScRiPt:alert(2)) [c](&#106;avascript:alert(3))
[d](vbscript:msgbox(4)) [e](data:text/html;base64,PHNjcmlwdD4=) [f](file:///etc/passwd)
<javascript:alert(5)> [k](<javascript:alert(11)>) [i](java&#x09;script:alert(7))
![g](javascript:alert(6)) ![h](data:image/svg+xml;base64,PHN2Zz4=)
![ok](data:image/png;base64,iVBORw0KGgo=)
[fine](https://example.org/?a=1&b="2") and a [section](#lesson)

<a href="javascript:alert(9)">raw</a> <svg onload=alert(10)> <iframe src=x></iframe>
<object data=x></object> <form action=javascript:alert(12)><input></form>
{XSS}

```mermaid
graph TD
  A["{XSS}"] --> B
  click A call alert(13)
```
"""
SAFE_SCHEMES = {"http", "https", "mailto"}
SAFE_DATA = re.compile(r"^data:image/(png|gif|jpeg|webp)[;,]")
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "poster"}
ACTIVE_ELEMENTS = {"iframe", "object", "embed", "svg", "form", "base", "frame", "applet"}


def course() -> dict[str, Any]:
    modules = [{"module_id": "m1", "order": 1, "title": f"Module {XSS}"}]
    profile = {"topic": XSS, "level": "beginner", "language": "en"}
    return {"course_id": "c-x", "title": f"Course {XSS}", "profile": profile, "modules": modules}


def lessons() -> list[dict[str, Any]]:
    return [{"order": 1, "title": XSS, "markdown": HOSTILE_MARKDOWN, "version": 1}]


def quizzes() -> list[dict[str, Any]]:
    options = [
        {"text": f"[x](javascript:alert(1)) {XSS}", "correct": True, "explanation": XSS},
        {"text": "javascript:alert(2)", "correct": False, "explanation": "<b>no</b>"},
    ]
    questions = [
        {"question_id": "q1", "kind": "choice", "question": XSS, "options": options},
        {
            "question_id": "q2",
            "kind": "open",
            "question": f"Why? {XSS}",
            "model_answer": XSS,
            "rubric": [XSS],
        },
    ]
    return [
        {
            "quiz_id": "quiz-x",
            "lesson_id": "l1",
            "order": 1,
            "title": f"Quiz {XSS}",
            "questions": questions,
        }
    ]


class _Elements(HTMLParser):
    """Every element with its attributes, and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name.lower(): value or "" for name, value in attrs}
        self.elements.append((tag.lower(), attributes))
        if tag.lower() == "script" and "src" not in attributes:
            self.inline_scripts += 1


def _scheme(url: str) -> str | None:
    """The scheme a browser would see (tabs and newlines dropped, spaces trimmed, any case)."""
    cleaned = re.sub(r"[\t\n\r]", "", url).strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08").lower()
    found = re.match(r"^([a-z][a-z0-9+.\-]*):", cleaned)
    return found[1] if found else None


def assert_inert(
    document: str, *, inline_scripts: int, script_sources: set[str], forms: int = 0
) -> None:
    parser = _Elements()
    parser.feed(document)
    parser.close()
    assert parser.inline_scripts == inline_scripts
    assert [tag for tag, _ in parser.elements].count("form") == forms
    for tag, attributes in parser.elements:
        assert tag not in ACTIVE_ELEMENTS - {"form"}, f"<{tag}> made it into the page"
        if tag == "script" and "src" in attributes:
            assert attributes["src"] in script_sources
        for name, value in attributes.items():
            assert not name.startswith("on"), f"<{tag} {name}=...>"
            if name in URL_ATTRIBUTES and tag != "script":
                scheme = _scheme(value)
                assert scheme in SAFE_SCHEMES or scheme is None or SAFE_DATA.match(value), (
                    f"<{tag} {name}={value!r}>"
                )
    # the hostile text is still there, as text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in document


def test_the_html_export_shows_hostile_lessons_and_titles_as_text() -> None:
    document = render_html(course(), lessons())
    assert_inert(document, inline_scripts=2, script_sources=set())  # mermaid and its start-up
    assert "securityLevel: 'strict'" in document
    assert "https://example.org/?a=1&amp;b=%222%22" in document  # a good link survives


@pytest.fixture(scope="module")
def scorm_page() -> str:
    with zipfile.ZipFile(BytesIO(build_package(course(), lessons(), quizzes()))) as package:
        return package.read("lessons/01/index.html").decode()


def test_a_scorm_page_shows_hostile_lessons_and_quizzes_as_text(scorm_page: str) -> None:
    sources = {
        "../../shared/mermaid.min.js",
        "../../shared/diagrams.js",
        "../../shared/scorm_api.js",
    }
    assert_inert(scorm_page, inline_scripts=0, script_sources=sources, forms=1)  # the quiz
    assert "script-src 'self'" in scorm_page  # the package's own files only
    assert scorm_page.count('<input type="radio"') == 2  # the quiz's own inputs, nothing more


def test_quiz_banks_carry_hostile_text_escaped() -> None:
    root = ET.fromstring(render_moodle_xml(course(), lessons(), quizzes()))
    # format="html": Moodle renders these as HTML, so the model's markup must arrive escaped
    # (names and category paths are plain text to Moodle)
    html = [el.findtext("text") or "" for el in root.iter() if el.get("format") == "html"]
    assert sum("&lt;script&gt;alert(2)&lt;/script&gt;" in t for t in html) >= 5
    assert not any(re.search(r"<(script|img|b)\b", t) for t in html)

    # GIFT: a question's format is its answers' and feedback's too; [plain] shows markup as text
    gift = render_gift(course(), lessons(), quizzes())
    questions = [line for line in gift.splitlines() if line.startswith("::")]
    assert len(questions) == 2
    assert all(re.match(r"^::(\\.|[^:\\])*::\[plain\]", line) for line in questions)
    assert "=[plain][x](javascript" in gift  # an answer starting like a format gets its own
