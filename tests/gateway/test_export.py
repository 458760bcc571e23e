"""Course export: markdown and one self-contained HTML file (no network, no injected script)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from services.gateway.export import (
    MERMAID_JS,
    NOT_WRITTEN,
    demote_headings,
    mermaid_script,
    render_html,
    render_markdown,
)

DIAGRAM = 'graph TD\n  A[Start] --> B{"x < y & z"}\n  B --> C["</script><b>bold</b>"]\n'

LESSON_1 = f"""# Coroutines

Intro with <script>alert("pwned")</script> in it.

## Await

```python
# a comment, not a heading
print("<b>hi</b>")
```

~~~bash
## also not a heading
~~~

```mermaid
{DIAGRAM}```

| a | b |
|---|---|
| 1 | 2 |

![photo](https://example.com/cat.png) and [docs](https://docs.python.org/3/).
"""

LESSON_3 = """Streams have readers and writers.

Setext title
============

#### Deep
"""


def _course() -> dict[str, Any]:
    modules = [
        {
            "module_id": f"m{i}",
            "order": i,
            "title": title,
            "description": f"About {title.lower()}.",
            "learning_objectives": [f"Use {title.lower()}"],
            "estimated_hours": 2.0,
        }
        for i, title in enumerate(["Coroutines", "Tasks", "Streams"], 1)
    ]
    profile = {"topic": "asyncio", "level": "beginner", "duration_hours": 10, "language": "en"}
    return {"course_id": "c-1", "title": "Python asyncio", "profile": profile, "modules": modules}


def _lessons() -> list[dict[str, Any]]:
    # deliberately out of order: the export follows the modules' order
    return [
        {"order": 3, "title": "Streams", "markdown": LESSON_3, "version": 1, "lesson_id": "l3"},
        {"order": 1, "title": "Coroutines", "markdown": LESSON_1, "version": 2, "lesson_id": "l1"},
    ]


class _Walker(HTMLParser):
    """Collects tags with their attributes, script bodies and ``<pre class="mermaid">`` text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.mermaid: list[str] = []
        self._in: str | None = None
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in {"meta", "br", "img", "hr", "link", "input"}:
            self.open.append(tag)
        if tag == "script":
            self._in = "script"
            self.scripts.append("")
        elif tag == "pre" and dict(attrs).get("class") == "mermaid":
            self._in = "mermaid"
            self.mermaid.append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag in {"script", "pre"}:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "mermaid":
            self.mermaid[-1] += data


def _walk(document: str) -> _Walker:
    walker = _Walker()
    walker.feed(document)
    walker.close()
    assert walker.open == [], f"unclosed elements: {walker.open}"
    return walker


# --- markdown -------------------------------------------------------------------------------


def test_markdown_has_title_profile_contents_and_lessons_in_module_order() -> None:
    doc = render_markdown(_course(), _lessons())
    assert doc.startswith("# Python asyncio\n")
    assert "Level: beginner" in doc and "Duration: 10 hours" in doc and "Language: en" in doc
    assert "1. [Coroutines](#module-1)" in doc
    assert f"2. [Tasks](#module-2) {NOT_WRITTEN}" in doc
    positions = [doc.index(s) for s in ("## Coroutines", "## Tasks", "## Streams")]
    assert positions == sorted(positions)
    assert doc.index("Intro with") < doc.index("Streams have readers")
    assert "About tasks." in doc  # the unwritten module still says what it covers


def test_markdown_demotes_headings_so_the_course_title_is_the_only_h1() -> None:
    doc = render_markdown(_course(), _lessons())
    outside_code = re.sub(r"^(```|~~~).*?^\1\s*$", "", doc, flags=re.S | re.M)
    assert re.findall(r"^# ", outside_code, flags=re.M) == ["# "]
    assert "\n## Coroutines\n" in doc and "\n### Await\n" in doc
    assert "\n##### Deep\n" in doc
    assert "Setext title\n------------" in doc  # setext H1 -> setext H2
    # a lesson without an H1 is headed by its title
    assert "\n## Streams\n\nStreams have readers" in doc


def test_markdown_leaves_code_fences_untouched() -> None:
    doc = render_markdown(_course(), _lessons())
    assert '```python\n# a comment, not a heading\nprint("<b>hi</b>")\n```' in doc
    assert "~~~bash\n## also not a heading\n~~~" in doc
    assert f"```mermaid\n{DIAGRAM}```" in doc


def test_demote_headings_caps_at_h6_and_handles_containers() -> None:
    text = "###### six\n\n> # quoted\n\n- ## listed\n\nPara\nlines\n---\n\n    # indented code\n"
    assert demote_headings(text) == (
        "###### six\n\n> ## quoted\n\n- ### listed\n\n### Para lines\n\n    # indented code\n"
    )


def test_markdown_of_a_course_without_lessons_lists_every_module_as_not_written() -> None:
    doc = render_markdown(_course(), [])
    assert doc.count(NOT_WRITTEN) == 2 * 3  # once in the contents, once in the section


# --- HTML -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def html_doc() -> str:
    return render_html(_course(), _lessons())


def test_html_parses_and_has_contents_with_anchors(html_doc: str) -> None:
    walker = _walk(html_doc)
    ids = {attrs.get("id") for _, attrs in walker.tags}
    toc = [
        attrs["href"]
        for tag, attrs in walker.tags
        if tag == "a" and attrs.get("href", "")[:1] == "#"
    ]
    assert toc == ["#module-1", "#module-2", "#module-3"]
    assert all(href[1:] in ids for href in toc)
    assert [tag for tag, _ in walker.tags].count("h1") == 1
    assert html_doc.index("Intro with") < html_doc.index("About tasks.")
    assert html_doc.index("About tasks.") < html_doc.index("Streams have readers")


def test_html_loads_nothing_from_outside(html_doc: str) -> None:
    walker = _walk(html_doc)
    for tag, attrs in walker.tags:
        assert tag != "link", "a <link> loads a resource"
        assert "src" not in attrs, f"<{tag} src=...> loads a resource"
        if tag != "a":
            assert not re.match(r"\s*(https?:)?//", attrs.get("href") or ""), (tag, attrs)
    markup = re.sub(r"<script>.*?</script>", "", html_doc, flags=re.S)
    assert not re.search(r"""(src=|<link|url\()\s*["']?\s*(https?:)?//""", markup, flags=re.I)
    assert "@import" not in markup
    # the image became a link; links to read elsewhere stay links
    assert 'href="https://example.com/cat.png"' in html_doc
    assert "Content-Security-Policy" in html_doc and "default-src 'none'" in html_doc


def test_html_escapes_the_lessons_html(html_doc: str) -> None:
    walker = _walk(html_doc)
    assert len(walker.scripts) == 2  # the mermaid library and its initialisation, nothing else
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in html_doc
    assert 'alert("pwned")' not in "".join(walker.scripts)
    assert "<b>" not in re.sub(r"<script>.*?</script>", "", html_doc, flags=re.S)


def test_html_renders_tables_and_code_with_language_class(html_doc: str) -> None:
    assert "<table>" in html_doc and "<th>a</th>" in html_doc
    assert '<pre><code class="language-python"># a comment, not a heading\n' in html_doc
    assert "print(&quot;&lt;b&gt;hi&lt;/b&gt;&quot;)" in html_doc
    assert '<code class="language-mermaid">' not in html_doc


def test_html_has_mermaid_diagram_source_escaped(html_doc: str) -> None:
    assert html_doc.count('<pre class="mermaid">') == 1
    assert "x &lt; y &amp; z" in html_doc
    assert "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html_doc
    assert _walk(html_doc).mermaid == [DIAGRAM]  # the browser hands mermaid the exact source


def test_html_inlines_the_mermaid_library_safely(html_doc: str) -> None:
    library, init = _walk(html_doc).scripts
    assert library == mermaid_script()
    assert len(library) > 1_000_000 and "globalThis" in library
    assert not re.search(r"</script|<!--", library, flags=re.I)
    assert "startOnLoad: true" in init and "securityLevel: 'strict'" in init
    # only the breakers were changed
    original = MERMAID_JS.read_text(encoding="utf-8")
    assert library.replace("<\\/script", "</script").replace("\\x3C!--", "<!--") == original


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_inlined_mermaid_library_is_still_valid_javascript(tmp_path: Path) -> None:
    script = tmp_path / "mermaid.inlined.js"
    script.write_text(mermaid_script(), encoding="utf-8")
    result = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_html_escapes_titles_and_refuses_a_bad_language() -> None:
    course = _course() | {"title": 'A <img src=x onerror="alert(1)">'}
    course["profile"] = course["profile"] | {"language": 'en" onload="x'}
    doc = render_html(course, [])
    assert "<img" not in doc.split("<script>")[0]
    assert '<html lang="en">' in doc


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_draws_the_diagram_offline_in_a_browser(html_doc: str, tmp_path: Path) -> None:
    page = tmp_path / "course.html"
    page.write_text(html_doc, encoding="utf-8")
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    dom = subprocess.run(args, capture_output=True, text=True, timeout=120).stdout
    assert '<pre class="mermaid" data-processed="true">' in dom
    drawn = re.search(r'<svg id="mermaid-[^"]*"[^>]*aria-roledescription="([^"]*)"', dom)
    assert drawn is not None, "mermaid drew no diagram"
    assert drawn[1] == "flowchart-v2", f"mermaid drew {drawn[1]!r}, not the flowchart"
    assert dom.count("<script") == 2  # nothing the lessons wrote became a script
