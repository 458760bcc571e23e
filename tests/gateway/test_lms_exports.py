"""LMS exports: a SCORM 1.2 package, Moodle XML and GIFT, checked by reading them back.

The checks (``check_scorm_package``, ``parse_moodle_xml``, ``parse_gift``) are reused by
the end-to-end test on a real course. The GIFT parser follows Moodle's own importer
(``question/format/gift/format.php``: escapes, names, formats, weights, feedback) for
the question types the export writes. The SCORM 1.2 XSDs are not part of the project, so
the manifest is checked structurally: namespaces, required elements, identifiers and
references, every file present; and a page is taken in Chromium inside a fake LMS.
"""

from __future__ import annotations

import asyncio
import functools
import html
import io
import json
import posixpath
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway import lms
from services.gateway.auth import Principal, current_principal
from services.gateway.lms.gift import render_gift
from services.gateway.lms.moodle import render_moodle_xml
from services.gateway.lms.scorm import build_package
from services.gateway.routes import courses

IMSCP = "http://www.imsproject.org/xsd/imscp_rootv1p1p2"
ADLCP = "http://www.adlnet.org/xsd/adlcp_rootv1p2"
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

TRICKY = "Which is right: {a = b} ~ c # d : e, <b>x</b> & \"quotes\" 'too' — café 日本 🚀?"

LESSON_1 = """# Coroutines

A coroutine is declared with `async def` and run with `await`.

```mermaid
graph TD
  A[Start] --> B{"x < y & z"}
```

See [the docs](https://docs.python.org/3/library/asyncio.html), [the next part](next.md),
[above](#coroutines) and ![a photo](photo.png).

<script>alert("pwned")</script>
"""

LESSON_2 = "Tasks run coroutines concurrently.\n\n## Cancelling\n\nCall `task.cancel()`.\n"


def course() -> dict[str, Any]:
    modules = [
        {"module_id": f"m{i}", "order": i, "title": title}
        for i, title in enumerate(["Coroutines", "Tasks / Futures", "Streams"], 1)
    ]
    profile = {"topic": "asyncio", "level": "beginner", "language": "en"}
    return {"course_id": "c-1", "title": "Python asyncio", "profile": profile, "modules": modules}


def lessons() -> list[dict[str, Any]]:
    # lesson 1 was revised: version 2 is the one exported; module 3 is not written yet
    return [
        {"order": 2, "title": "Tasks", "markdown": LESSON_2, "version": 1, "lesson_id": "l2"},
        {"order": 1, "title": "Old", "markdown": "# Old\n", "version": 1, "lesson_id": "l1"},
        {"order": 1, "title": "Coroutines", "markdown": LESSON_1, "version": 2, "lesson_id": "l1"},
    ]


def _option(text: str, correct: bool, explanation: str) -> dict[str, Any]:
    return {"text": text, "correct": correct, "explanation": explanation}


def quizzes() -> list[dict[str, Any]]:
    tricky = [
        {
            "question_id": "q1",
            "kind": "choice",
            "question": TRICKY + "\nSecond line with a \\ backslash and \\n not a newline.",
            "options": [
                _option("%50% of the time", False, "Weights look like this: %50%."),
                _option("[1, 2] == [1, 2]", True, "[html] is not a format here; a:b = c#d."),
                _option("<none> & {} ~ =", False, "Tags <i>stay</i> text & so do {braces}."),
                _option("naïve — ünïcödé", False, "Ça ne marche pas ~ 😅"),
            ],
        },
        {
            "question_id": "q2",
            "kind": "choice",
            "question": "What does `await` do?",
            "options": [
                _option("It blocks the thread", False, "No: other tasks keep running."),
                _option("It suspends the coroutine", True, "Right: the loop runs others."),
            ],
        },
        {
            "question_id": "q3",
            "kind": "open",
            "question": "Why use asyncio: {speed} or <clarity>?",
            "model_answer": "For I/O-bound work: one thread, many waits.\nNot for CPU = work.",
            "rubric": ["Mentions I/O-bound work", "Says {CPU} work needs processes # or threads"],
        },
    ]
    plain = [
        {
            "question_id": "q1",
            "kind": "choice",
            "question": "What runs a coroutine concurrently?",
            "options": [
                _option("asyncio.create_task", True, "It schedules the coroutine."),
                _option("time.sleep", False, "It blocks everything."),
                _option("print", False, "It only prints."),
            ],
        }
    ]
    return [
        {"order": 1, "lesson_id": "l1", "quiz_id": "quiz-1", "title": "Quiz: {coroutines}"}
        | {"questions": tricky},
        {"order": 2, "lesson_id": "l2", "quiz_id": "quiz-2", "title": "Quiz: tasks"}
        | {"questions": plain},
    ]


# --- what an export should carry, and the readers that check it -----------------------


def _text(value: Any) -> str:
    return str(value).replace("\r\n", "\n").strip()


def expected(quiz: dict[str, Any]) -> list[dict[str, Any]]:
    """The quiz's questions as an LMS should get them back."""
    out = []
    for q in quiz["questions"]:
        if q["kind"] == "choice":
            options = [
                {
                    "text": _text(o["text"]),
                    "correct": o["correct"],
                    "feedback": _text(o["explanation"]),
                }
                for o in q["options"]
            ]
            out.append({"kind": "choice", "question": _text(q["question"]), "options": options})
        else:
            out.append(
                {
                    "kind": "open",
                    "question": _text(q["question"]),
                    "model_answer": _text(q["model_answer"]),
                    "rubric": [_text(c) for c in q["rubric"]],
                }
            )
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self.fieldsets: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name) is not None:
                self.refs.append((tag, name, str(found[name])))
        if tag == "script":
            self.scripts.append(str(found.get("src")))
        if tag == "fieldset":
            self.fieldsets.append(found)


def check_scorm_package(data: bytes, *, lessons: int) -> dict[str, bytes]:
    """The package's files, after asserting it is a well-formed SCORM 1.2 package."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    names = archive.namelist()
    assert len(names) == len(set(names))
    assert all(not n.startswith("/") and ".." not in n.split("/") for n in names), names
    files = {name: archive.read(name) for name in names}
    assert "imsmanifest.xml" in files  # at the root

    root = ET.fromstring(files["imsmanifest.xml"])
    ns = {"cp": IMSCP, "adlcp": ADLCP}
    assert root.tag == f"{{{IMSCP}}}manifest"
    assert root.findtext("cp:metadata/cp:schema", namespaces=ns) == "ADL SCORM"
    assert root.findtext("cp:metadata/cp:schemaversion", namespaces=ns) == "1.2"

    ids = [el.get("identifier") for el in root.iter() if el.get("identifier") is not None]
    assert len(ids) == len(set(ids)), ids
    assert all(re.fullmatch(r"[A-Za-z_][\w.-]*", str(i)) for i in ids), ids  # xsd:ID

    organizations = root.find("cp:organizations", ns)
    assert organizations is not None
    orgs = organizations.findall("cp:organization", ns)
    assert len(orgs) == 1 and organizations.get("default") == orgs[0].get("identifier")
    assert (orgs[0].findtext("cp:title", namespaces=ns) or "").strip()
    resources = {r.get("identifier"): r for r in root.findall("cp:resources/cp:resource", ns)}
    items = orgs[0].findall("cp:item", ns)
    assert len(items) == lessons

    listed: set[str] = set()
    for resource in resources.values():
        assert resource.get("type") == "webcontent"
        assert resource.get(f"{{{ADLCP}}}scormtype") in {"sco", "asset"}
        hrefs = [f.get("href") for f in resource.findall("cp:file", ns)]
        for href in hrefs:
            assert href in files, f"{href} is listed in the manifest but not in the zip"
        listed.update(str(h) for h in hrefs)
        if resource.get("href"):
            assert resource.get("href") in hrefs
        for dependency in resource.findall("cp:dependency", ns):
            assert dependency.get("identifierref") in resources
    assert set(files) - listed == {"imsmanifest.xml"}, "files in the zip the manifest omits"

    pages = []
    for item in items:
        assert (item.findtext("cp:title", namespaces=ns) or "").strip()
        assert len(item.findtext("cp:title", namespaces=ns) or "") <= 200
        resource = resources[item.get("identifierref")]
        assert resource.get(f"{{{ADLCP}}}scormtype") == "sco"
        assert re.fullmatch(r"lessons/\d{2,}/index\.html", str(resource.get("href")))
        pages.append(str(resource.get("href")))
        mastery = item.findtext("adlcp:masteryscore", namespaces=ns)
        assert mastery in (None, "70")

    for page in pages:
        parser = _Links()
        parser.feed(files[page].decode("utf-8"))
        for tag, attr, ref in parser.refs:
            if ref.startswith("#") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", ref):
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), ref))
            assert target in files, f"{page}: <{tag} {attr}={ref!r}> is not in the package"
        assert parser.scripts[-1] == "../../shared/scorm_api.js", parser.scripts
    return files


def _html_text(fragment: str) -> str:
    """The inverse of the export's plain text to HTML: ``<br>`` lines, entities."""
    assert not re.search(r"<(?!br>)", fragment), fragment  # nothing but line breaks
    return html.unescape(re.sub(r"<br>\n?", "\n", fragment)).strip()


class _GraderInfo(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str]] = []
        self._tag: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("p", "li"):
            self._tag, self._text = tag, ""
        elif tag == "br":
            self._text += "\n"

    def handle_data(self, data: str) -> None:
        if self._tag:
            self._text += data.lstrip("\n") if self._text.endswith("\n") else data

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag:
            self.blocks.append((tag, self._text.strip()))
            self._tag = None


def parse_moodle_xml(data: bytes) -> list[dict[str, Any]]:
    """Categories with their questions, read back as a Moodle XML import would."""
    root = ET.fromstring(data)
    assert root.tag == "quiz"
    categories: list[dict[str, Any]] = []
    for question in root.findall("question"):
        kind = question.get("type")
        if kind == "category":
            path = question.findtext("category/text") or ""
            categories.append({"category": path, "questions": []})
            continue
        assert categories, "a question before any category"
        name = question.findtext("name/text") or ""
        text_el = question.find("questiontext")
        assert text_el is not None and text_el.get("format") == "html"
        read: dict[str, Any] = {
            "name": name,
            "question": _html_text(text_el.findtext("text") or ""),
        }
        if kind == "multichoice":
            assert question.findtext("single") == "true"
            read["kind"] = "choice"
            read["options"] = [
                {
                    "text": _html_text(a.findtext("text") or ""),
                    "correct": float(a.get("fraction", "0")) == 100,
                    "feedback": _html_text(a.findtext("feedback/text") or ""),
                }
                for a in question.findall("answer")
            ]
            assert all(
                float(a.get("fraction", "x")) in (0, 100) for a in question.findall("answer")
            )
        else:
            assert kind == "essay", kind
            info = question.find("graderinfo")
            assert info is not None and info.get("format") == "html"
            parser = _GraderInfo()
            parser.feed(info.findtext("text") or "")
            paragraphs = [t for tag, t in parser.blocks if tag == "p"]
            assert paragraphs[0] == "Model answer" and paragraphs[2] == "Rubric", paragraphs
            read["kind"] = "open"
            read["model_answer"] = paragraphs[1]
            read["rubric"] = [t for tag, t in parser.blocks if tag == "li"]
        categories[-1]["questions"].append(read)
    return categories


# Moodle's GIFT escapes, as its importer replaces them (escapedchar_pre / _post)
_GIFT_ESCAPES = [
    ("\\:", "&&058;", ":"),
    ("\\#", "&&035;", "#"),
    ("\\=", "&&061;", "="),
    ("\\{", "&&123;", "{"),
    ("\\}", "&&125;", "}"),
    ("\\~", "&&126;", "~"),
    ("\\n", "&&010", "\n"),
]
_GIFT_WEIGHT = re.compile(r"^%-*([0-9]{1,2})\.?([0-9]*)%")
_GIFT_FORMATS = {"moodle", "html", "plain", "markdown"}


def _gift_pre(text: str) -> str:
    text = text.replace("\\\\", "&&092;")
    for escaped, placeholder, _ in _GIFT_ESCAPES:
        text = text.replace(escaped, placeholder)
    return text.replace("&&092;", "\\")


def _gift_post(text: str) -> str:
    for _, placeholder, char in _GIFT_ESCAPES:
        text = text.replace(placeholder, char)
    return text


def _gift_format(text: str, default: str) -> tuple[str, str]:
    text, fmt = text.strip(), default
    if text.startswith("["):
        end = text.find("]")
        if text[1:end] in _GIFT_FORMATS:
            fmt, text = text[1:end], text[end + 1 :]
    return _gift_post(text).strip(), fmt


def parse_gift(text: str) -> list[dict[str, Any]]:
    """Categories with their questions, read back as Moodle's GIFT import would."""
    blocks: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line.strip():
            blocks[-1].append(" " if line.strip().startswith("//") else line)
        elif blocks[-1]:
            blocks.append([])
    categories: list[dict[str, Any]] = []
    for block in blocks:
        raw = "\n".join(block).strip()
        if not raw:
            continue
        raw = _gift_pre(raw)
        if raw.startswith("$CATEGORY:"):
            categories.append({"category": raw[10:].strip(), "questions": []})
            continue
        assert categories, "a question before any category"
        assert raw.startswith("::"), raw
        raw = raw[2:]
        end = raw.index("::")
        name, raw = _gift_post(raw[:end]).strip(), raw[end + 2 :].strip()
        start, finish = raw.index("{"), raw.index("}")
        assert raw.endswith("}"), "text after the answers would make a missing-word question"
        answers = raw[start + 1 : finish].strip()
        question_text, fmt = _gift_format(raw[:start], "moodle")
        assert fmt == "plain", fmt
        general = ""
        if "####" in answers:
            cut = answers.rindex("####")
            general, _ = _gift_format(answers[cut + 4 :], fmt)
            answers = answers[:cut].strip()
        read: dict[str, Any] = {"name": name, "question": question_text}
        if answers == "":
            model, _, rubric = general.rpartition("\n\nRubric:\n")
            assert model.startswith("Model answer: "), general
            read |= {"kind": "open", "model_answer": model.removeprefix("Model answer: ")}
            read["rubric"] = [line.removeprefix("- ") for line in rubric.split("\n")]
        else:
            assert "~" in answers, "multiple choice needs a wrong answer (~)"
            read["kind"] = "choice"
            read["options"] = []
            parts = answers.replace("=", "~=").split("~")
            for part in parts[1:] if not parts[0].strip() else parts:
                part = part.strip()
                if part.startswith("="):
                    weight, part = 1.0, part[1:]
                elif match := _GIFT_WEIGHT.match(part):
                    weight, part = float(match[1]) / 100, part[match.end() :]
                else:
                    weight = 0.0
                answer, _, feedback = part.partition("#")
                read["options"].append(
                    {
                        "text": _gift_format(answer, fmt)[0],
                        "correct": weight == 1.0,
                        "feedback": _gift_format(feedback, fmt)[0],
                    }
                )
        categories[-1]["questions"].append(read)
    return categories


def without_names(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in q.items() if k != "name"} for q in questions]


# --- SCORM --------------------------------------------------------------------------


@pytest.fixture
def package() -> dict[str, bytes]:
    return check_scorm_package(build_package(course(), lessons(), quizzes()), lessons=2)


def _manifest(files: dict[str, bytes]) -> ET.Element:
    return ET.fromstring(files["imsmanifest.xml"])


def test_scorm_manifest_is_scorm_12_with_an_item_and_sco_per_written_lesson(
    package: dict[str, bytes],
) -> None:
    ns = {"cp": IMSCP, "adlcp": ADLCP}
    root = _manifest(package)
    raw = package["imsmanifest.xml"].decode()
    assert raw.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert 'xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2"' in raw
    org = root.find("cp:organizations/cp:organization", ns)
    assert org is not None and org.findtext("cp:title", namespaces=ns) == "Python asyncio"
    items = org.findall("cp:item", ns)
    # module 3 has no lesson: no item; titles are the modules'
    assert [i.findtext("cp:title", namespaces=ns) for i in items] == [
        "Coroutines",
        "Tasks / Futures",
    ]
    assert [i.findtext("adlcp:masteryscore", namespaces=ns) for i in items] == ["70", "70"]
    resources = root.findall("cp:resources/cp:resource", ns)
    scos = [r for r in resources if r.get(f"{{{ADLCP}}}scormtype") == "sco"]
    assert [r.get("href") for r in scos] == ["lessons/01/index.html", "lessons/02/index.html"]
    assert [i.get("identifierref") for i in items] == [r.get("identifier") for r in scos]
    assert set(package) == {
        "imsmanifest.xml",
        "lessons/01/index.html",
        "lessons/02/index.html",
        "shared/scorm_api.js",
        "shared/lesson.css",
        "shared/diagrams.js",
        "shared/mermaid.min.js",
    }
    assert next(iter(package)) == "imsmanifest.xml"  # first in the zip


def test_scorm_pages_render_the_lesson_and_its_quiz_safely(package: dict[str, bytes]) -> None:
    page = package["lessons/01/index.html"].decode()
    assert '<html lang="en">' in page and "script-src 'self'" in page
    assert "<h1>Coroutines</h1>" in page and "Old" not in page  # the latest version
    assert '<pre class="mermaid">' in page
    assert page.count("<script") == 3  # mermaid, its start-up, the SCORM runtime
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page  # raw HTML escaped
    # the relative link and image lead nowhere in the package: their href is gone
    assert "next.md" not in page and "photo.png" not in page
    assert 'href="https://docs.python.org/3/library/asyncio.html" target="_blank"' in page
    assert 'href="#coroutines"' in page

    parser = _Links()
    parser.feed(page)
    choice = [f for f in parser.fieldsets if f.get("data-kind") == "choice"]
    assert [f.get("data-answer") for f in choice] == ["1", "1"]
    assert len([f for f in parser.fieldsets if f.get("data-kind") == "open"]) == 1
    assert html.escape(TRICKY) in page
    assert "Weights look like this: %50%." in page

    plain_page = package["lessons/02/index.html"].decode()
    assert "mermaid" not in plain_page  # no diagram, no library
    assert "<h1>Tasks / Futures</h1>" in plain_page  # no H1 of its own: the module's title
    assert "Lesson 2 of 2" in plain_page


def test_scorm_runtime_grades_and_reports_to_the_lms(package: dict[str, bytes]) -> None:
    js = package["shared/scorm_api.js"].decode()
    for call in (
        "LMSInitialize",
        "LMSGetValue",
        "cmi.core.score.raw",
        "cmi.core.score.min",
        "cmi.core.score.max",
        "cmi.core.lesson_status",
        "cmi.core.session_time",
        "LMSCommit",
        "LMSFinish",
    ):
        assert call in js, call
    assert "var MASTERY = 70;" in js
    assert "win.parent" in js and "opener" in js


def test_a_package_without_quizzes_or_diagrams_still_holds_together() -> None:
    long_title = "A very long module title " * 12
    c = course() | {"modules": [{"order": 1, "title": long_title}]}
    files = check_scorm_package(
        build_package(c, [{"order": 1, "markdown": "Hello.", "version": 1}], []), lessons=1
    )
    assert "shared/mermaid.min.js" not in files
    title = _manifest(files).findtext(
        f"{{{IMSCP}}}organizations/{{{IMSCP}}}organization/{{{IMSCP}}}item/{{{IMSCP}}}title"
    )
    assert title is not None and len(title) == 200 and title.endswith("…")
    page = files["lessons/01/index.html"].decode()
    assert "lectern-quiz" not in page
    assert _manifest(files).find(f".//{{{ADLCP}}}masteryscore") is None


def test_an_empty_course_gives_an_empty_but_valid_package() -> None:
    files = check_scorm_package(build_package(course(), [], []), lessons=0)
    assert set(files) == {"imsmanifest.xml", "shared/scorm_api.js", "shared/lesson.css"}


_NODE_DRIVER = r"""
const fs = require("fs");
const vm = require("vm");
const [script, mode, key, answers] = process.argv.slice(2);
const calls = [];
const api = {
  LMSInitialize: (a) => { calls.push(["LMSInitialize", a]); return "true"; },
  LMSGetValue: (k) => { calls.push(["LMSGetValue", k]); return "not attempted"; },
  LMSSetValue: (k, v) => { calls.push(["LMSSetValue", k, v]); return "true"; },
  LMSCommit: (a) => { calls.push(["LMSCommit", a]); return "true"; },
  LMSFinish: (a) => { calls.push(["LMSFinish", a]); return "true"; },
  LMSGetLastError: () => "0",
};
// the LMS two frames up, as when it nests the SCO in a frameset
const lmsWindow = { API: api };
lmsWindow.parent = lmsWindow;
const middle = { parent: lmsWindow };
let window;
if (mode === "nested") {
  window = { parent: middle };
} else if (mode === "opener") {
  window = { opener: middle };
  window.parent = window;
} else if (mode === "cross-origin") {
  const foreign = {};
  Object.defineProperty(foreign, "API", { get() { throw new Error("SecurityError"); } });
  window = { parent: foreign };
} else {
  window = {};
  window.parent = window;
}
const context = vm.createContext({ window });
vm.runInContext(fs.readFileSync(script, "utf8"), context);
const result = window.LecternScorm.submit(JSON.parse(key), JSON.parse(answers));
window.LecternScorm.finish();
console.log(JSON.stringify({ result, calls }));
"""


def _run_node(tmp_path: Path, js: bytes, mode: str, key: list[int], answers: list[Any]) -> Any:
    (tmp_path / "scorm_api.js").write_bytes(js)
    (tmp_path / "driver.js").write_text(_NODE_DRIVER)
    args = [str(NODE), str(tmp_path / "driver.js"), str(tmp_path / "scorm_api.js"), mode]
    done = subprocess.run(
        [*args, json.dumps(key), json.dumps(answers)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _sets(calls: list[list[str]]) -> dict[str, str]:
    return {c[1]: c[2] for c in calls if c[0] == "LMSSetValue"}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_scorm_runtime_reports_right_and_wrong_answers_to_a_fake_lms(
    package: dict[str, bytes], tmp_path: Path
) -> None:
    parser = _Links()
    parser.feed(package["lessons/01/index.html"].decode())
    key = [int(str(f["data-answer"])) for f in parser.fieldsets if f.get("data-kind") == "choice"]
    js = package["shared/scorm_api.js"]

    right = _run_node(tmp_path, js, "nested", key, key)
    assert right["result"] == {"right": 2, "total": 2, "raw": 100, "passed": True, "recorded": True}
    calls = right["calls"]
    assert calls[0] == ["LMSInitialize", ""]
    assert calls[-1] == ["LMSFinish", ""] and ["LMSCommit", ""] in calls
    assert [c[0] for c in calls].count("LMSFinish") == 1  # finish() again is a no-op
    reported = _sets(calls)
    assert reported["cmi.core.score.raw"] == "100"
    assert reported["cmi.core.score.min"] == "0" and reported["cmi.core.score.max"] == "100"
    assert reported["cmi.core.lesson_status"] == "passed"
    assert re.fullmatch(r"\d{2,4}:\d{2}:\d{2}\.\d{2}", reported["cmi.core.session_time"])

    wrong = _run_node(tmp_path, js, "opener", key, [(k + 1) % 2 for k in key])
    assert _sets(wrong["calls"])["cmi.core.score.raw"] == "0"
    assert _sets(wrong["calls"])["cmi.core.lesson_status"] == "failed"

    half = _run_node(tmp_path, js, "nested", [0, 1, 2, 3, 0], [0, 1, 2, None, 1])
    assert _sets(half["calls"])["cmi.core.score.raw"] == "60"  # below 70 %: failed
    assert _sets(half["calls"])["cmi.core.lesson_status"] == "failed"

    for mode in ("none", "cross-origin"):  # no LMS: graded, nothing recorded, no error
        alone = _run_node(tmp_path, js, mode, key, key)
        assert alone["calls"] == [] and alone["result"]["recorded"] is False


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(package: dict[str, bytes], tmp_path: Path) -> Iterator[str]:
    """The package unpacked under a fake LMS page with a recording SCORM 1.2 API."""
    for name, content in package.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    (tmp_path / "lms.html").write_text(
        "<!DOCTYPE html><html><head><script>\n"
        "window.calls = [];\n"
        "function record(name) { return function (a, b) {\n"
        "  calls.push(b === undefined ? [name, a] : [name, a, b]);\n"
        "  return name === 'LMSGetValue' ? 'not attempted' : 'true'; }; }\n"
        "window.API = {};\n"
        "['LMSInitialize', 'LMSGetValue', 'LMSSetValue', 'LMSCommit', 'LMSFinish']\n"
        "  .forEach(function (n) { window.API[n] = record(n); });\n"
        "</script></head><body>"
        '<iframe id="sco" src="lessons/01/index.html" style="width:100%;height:2000px">'
        "</iframe></body></html>"
    )
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_a_learner_takes_the_sco_in_a_browser_inside_a_fake_lms(served: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = await browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        missing: list[str] = []
        page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
        await page.goto(f"{served}/lms.html")
        sco = page.frame_locator("#sco")
        # mermaid drew the diagram, under the page's CSP
        await sco.locator('pre.mermaid[data-processed="true"] svg').wait_for(timeout=20_000)
        fieldsets = sco.locator('fieldset[data-kind="choice"]')
        for i in range(await fieldsets.count()):
            right = await fieldsets.nth(i).get_attribute("data-answer")
            await fieldsets.nth(i).locator(f'input[value="{right}"]').check()
        await sco.locator("textarea").fill("I/O-bound work, one thread.")
        await sco.locator("button[type=submit]").click()
        result = sco.locator(".result")
        await result.filter(has_text="passed").wait_for(timeout=10_000)
        assert (await result.text_content() or "").startswith("2 of 2 right (100%)")
        assert await sco.locator(".model-answer").is_visible()
        calls = await page.evaluate("window.calls")
        await browser.close()
    sets = {c[1]: c[2] for c in calls if c[0] == "LMSSetValue"}
    assert calls[0] == ["LMSInitialize", ""] and calls[-1] == ["LMSFinish", ""]
    assert sets["cmi.core.score.raw"] == "100" and sets["cmi.core.lesson_status"] == "passed"
    assert [m for m in missing if not m.endswith("/favicon.ico")] == []
    assert [p for p in problems if "favicon.ico" not in p and "404" not in p] == []


# --- Moodle XML and GIFT ------------------------------------------------------------


def test_moodle_xml_round_trips_every_question() -> None:
    read = parse_moodle_xml(render_moodle_xml(course(), lessons(), quizzes()))
    assert [c["category"] for c in read] == [
        "$course$/top/Python asyncio/01. Coroutines",
        "$course$/top/Python asyncio/02. Tasks // Futures",  # a slash in a name is doubled
    ]
    for category, quiz in zip(read, quizzes(), strict=True):
        assert without_names(category["questions"]) == expected(quiz)
        names = [q["name"] for q in category["questions"]]
        assert len(set(names)) == len(names) and all(names)


def test_moodle_xml_is_escaped_and_carries_moodles_fields() -> None:
    data = render_moodle_xml(course(), lessons(), quizzes())
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    text = data.decode("utf-8")
    assert "<b>x</b>" not in text and "&amp;lt;b&amp;gt;x&amp;lt;/b&amp;gt;" in text
    assert "café 日本 🚀" in text  # UTF-8, not character references
    root = ET.fromstring(data)
    choice = root.findall("question[@type='multichoice']")
    assert len(choice) == 3
    assert [q.findtext("idnumber") for q in choice] == ["quiz-1-q1", "quiz-1-q2", "quiz-2-q1"]
    assert all(q.findtext("penalty") and q.findtext("defaultgrade") == "1" for q in choice)
    essay = root.find("question[@type='essay']")
    assert essay is not None and essay.findtext("responseformat") == "editor"


def test_moodle_xml_drops_characters_xml_cannot_carry() -> None:
    quiz = quizzes()[1]
    quiz["questions"][0]["question"] = "Bell\x07 and form feed\x0c?"
    read = parse_moodle_xml(render_moodle_xml(course(), lessons(), [quiz]))
    assert read[0]["questions"][0]["question"] == "Bell and form feed?"


def test_gift_round_trips_every_question() -> None:
    read = parse_gift(render_gift(course(), lessons(), quizzes()))
    assert [c["category"] for c in read] == [
        "$course$/top/Python asyncio/01. Coroutines",
        "$course$/top/Python asyncio/02. Tasks // Futures",
    ]
    for category, quiz in zip(read, quizzes(), strict=True):
        assert without_names(category["questions"]) == expected(quiz)
    assert read[0]["questions"][0]["name"].startswith("01.1 Which is right: {a = b} ~ c")


def test_gift_escapes_special_characters_and_keeps_each_question_one_block() -> None:
    text = render_gift(course(), lessons(), quizzes())
    assert "\\{a \\= b\\} \\~ c \\# d \\: e" in text
    assert "a \\\\ backslash and \\\\n not a newline" in text
    assert "~%0%%50% of the time" in text  # not read as a 50 % weight
    assert "=[plain][1, 2] \\=\\= [1, 2]" in text  # not read as a format
    blocks = [b for b in text.split("\n\n") if b.strip()]
    questions = [b for b in blocks if b.startswith("::")]
    assert len(questions) == 4 and all(q.rstrip().endswith("}") for q in questions)
    assert "::[plain]Why use asyncio\\: \\{speed\\} or <clarity>?{####Model answer\\:" in text


def test_quiz_exports_skip_lessons_without_a_quiz_and_name_the_lesson() -> None:
    read = parse_gift(render_gift(course(), lessons(), quizzes()[1:]))
    assert [c["category"] for c in read] == ["$course$/top/Python asyncio/02. Tasks // Futures"]
    assert parse_moodle_xml(render_moodle_xml(course(), lessons(), [])) == []


# --- the route ----------------------------------------------------------------------


@pytest.fixture
def asked() -> list[tuple[str, str, dict[str, Any]]]:
    """The RPC queries the route made, in order."""
    return []


@pytest.fixture
def rpc_answers() -> dict[tuple[str, str], Any]:
    """What the planner, content and assessment services answer the route."""
    return {
        ("planner", "get_course"): course(),
        ("content", "list_lessons"): {"course_id": "c-1", "lessons": lessons()},
        ("assessment", "export_quizzes"): quizzes(),
    }


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch,
    asked: list[tuple[str, str, dict[str, Any]]],
    rpc_answers: dict[tuple[str, str], Any],
) -> TestClient:
    async def ask(request: Any, service: str, query: str, **body: Any) -> Any:
        asked.append((service, query, body))
        await asyncio.sleep(0)
        return rpc_answers[(service, query)]

    monkeypatch.setattr(courses, "ask", ask)
    app = FastAPI()
    app.include_router(courses.router)
    app.dependency_overrides[current_principal] = lambda: Principal("u-1", "t-1", "user", True)
    return TestClient(app)


@pytest.mark.parametrize(
    ("fmt", "media_type", "filename"),
    [
        ("scorm", "application/zip", "python-asyncio.zip"),
        ("moodle", "application/xml", "python-asyncio.xml"),
        ("gift", "text/plain; charset=utf-8", "python-asyncio.gift.txt"),
    ],
)
def test_the_export_route_serves_each_lms_format(
    client: TestClient,
    asked: list[tuple[str, str, dict[str, Any]]],
    fmt: str,
    media_type: str,
    filename: str,
) -> None:
    resp = client.get(f"/v1/courses/c-1/export?format={fmt}")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == media_type
    assert resp.headers["content-disposition"] == f'attachment; filename="{filename}"'
    who = {"user_id": "u-1", "tenant_id": "t-1", "course_id": "c-1"}
    assert ("assessment", "export_quizzes", who) in asked
    if fmt == "scorm":
        check_scorm_package(resp.content, lessons=2)
    elif fmt == "moodle":
        assert len(parse_moodle_xml(resp.content)) == 2
    else:
        assert len(parse_gift(resp.text)) == 2


def test_markdown_export_does_not_ask_for_answer_keys_and_unknown_formats_are_refused(
    client: TestClient, asked: list[tuple[str, str, dict[str, Any]]]
) -> None:
    assert client.get("/v1/courses/c-1/export?format=markdown").status_code == 200
    assert [q[0] for q in asked] == ["planner", "content"]
    bad = client.get("/v1/courses/c-1/export?format=pdf")
    assert bad.status_code == 422
    assert "'scorm', 'moodle' or 'gift'" in bad.text


def test_an_lms_export_with_nothing_to_put_in_it_is_a_conflict(
    client: TestClient, rpc_answers: dict[tuple[str, str], Any]
) -> None:
    rpc_answers[("assessment", "export_quizzes")] = []
    for fmt in ("moodle", "gift"):
        resp = client.get(f"/v1/courses/c-1/export?format={fmt}")
        assert resp.status_code == 409 and "no quiz written yet" in resp.text, resp.text
    assert client.get("/v1/courses/c-1/export?format=scorm").status_code == 200
    rpc_answers[("content", "list_lessons")] = {"course_id": "c-1", "lessons": []}
    resp = client.get("/v1/courses/c-1/export?format=scorm")
    assert resp.status_code == 409 and "no lesson written yet" in resp.text


def test_formats_table_matches_the_route() -> None:
    assert set(lms.FORMATS) == {"scorm", "moodle", "gift"}
