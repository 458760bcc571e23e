"""Course export: one markdown document, or one self-contained HTML file.

Pure functions over the course (title, profile, modules) and its lessons. The HTML
works offline, opened from disk: the stylesheet and the vendored mermaid library
(``web/vendor/mermaid.min.js``) are inlined, a Content-Security-Policy forbids loading
anything else, and the lessons' markdown is rendered with raw HTML escaped, so text an
LLM wrote cannot inject a script.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

MERMAID_JS = Path(__file__).parent / "web" / "vendor" / "mermaid.min.js"
NOT_WRITTEN = "(lesson not written yet)"

_ATX_MARKER = re.compile(r"#{1,6}")
# What ends a <script> element early (``</script``) or can keep it from ending
# (``<!--``, the start of the "escaped" states of the HTML tokenizer).
_SCRIPT_BREAKERS = re.compile(r"</(?=script)|<!--", re.IGNORECASE)


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    markdown: str
    written: bool


def render_markdown(course: dict[str, Any], lessons: list[dict[str, Any]]) -> str:
    """The course as one markdown document: title, profile, contents, every lesson in order.

    Lesson headings are demoted one level (the course title is the only H1); lines in
    code blocks are left as they are. A module without a lesson says so.
    """
    sections = _sections(course, lessons)
    parts = [f"# {_one_line(course.get('title') or 'Course')}"]
    profile = _profile_line(course)
    if profile:
        parts.append(f"*{profile}*")
    if sections:
        toc = [
            f"{i}. [{_link_text(s.title)}](#{s.anchor})" + ("" if s.written else f" {NOT_WRITTEN}")
            for i, s in enumerate(sections, 1)
        ]
        parts.append("## Contents\n\n" + "\n".join(toc))
    parts.extend(f'<a id="{s.anchor}"></a>\n\n{s.markdown}' for s in sections)
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def render_html(course: dict[str, Any], lessons: list[dict[str, Any]]) -> str:
    """The course as one self-contained HTML file that renders offline, diagrams included.

    Markdown is rendered server-side (tables, fenced code as ``<pre><code
    class="language-x">``, raw HTML escaped); ```` ```mermaid ```` fences become
    ``<pre class="mermaid">`` drawn by the inlined mermaid library.
    """
    sections = _sections(course, lessons)
    esc = html.escape
    title = _one_line(course.get("title") or "Course")
    language = str((course.get("profile") or {}).get("language") or "en")
    if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*", language):
        language = "en"
    mermaid_js = mermaid_script()
    toc = "".join(
        f'<li><a href="#{s.anchor}">{esc(s.title)}</a>'
        + ("" if s.written else f' <span class="pending">{esc(NOT_WRITTEN)}</span>')
        + "</li>\n"
        for s in sections
    )
    body = "".join(
        f'<section id="{s.anchor}" class="lesson">\n{_MD.render(s.markdown)}</section>\n'
        for s in sections
    )
    profile = _profile_line(course)
    csp = _content_security_policy()
    head = (
        f'<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="Lectern">\n<title>{esc(title)}</title>\n'
        f"<style>{_CSS}</style>\n"
    )
    header = f"<header>\n<h1>{esc(title)}</h1>\n"
    if profile:
        header += f'<p class="profile">{esc(profile)}</p>\n'
    header += "</header>\n"
    if sections:
        header += '<nav class="toc" aria-label="Contents">\n<h2>Contents</h2>\n'
        header += f"<ol>\n{toc}</ol>\n</nav>\n"
    scripts = f"<script>{mermaid_js}</script>\n<script>{_MERMAID_INIT}</script>\n"
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(language)}">\n<head>\n{head}</head>\n'
        f"<body>\n<main>\n{header}{body}</main>\n{scripts}</body>\n</html>\n"
    )


@cache
def mermaid_script() -> str:
    """The vendored mermaid library, made safe to inline in a ``<script>`` element.

    ``</script`` becomes ``<\\/script`` and ``<!--`` becomes ``\\x3C!--``: the same
    characters to JavaScript (in strings, templates and regular expressions alike), but
    no longer markup that could end the element early. A blanket ``</`` → ``<\\/``
    would break the library: it contains the regular expression ``/</g``.
    """
    source = MERMAID_JS.read_text(encoding="utf-8")
    return _SCRIPT_BREAKERS.sub(lambda m: "<\\/" if m[0] == "</" else "\\x3C!--", source)


def render_fragment(markdown: str) -> str:
    """``markdown`` as an HTML fragment, rendered as the HTML export renders lessons.

    Raw HTML escaped, ```` ```mermaid ```` fences as ``<pre class="mermaid">``, images
    other than inline data as links. The SCORM export's lesson pages use it.
    """
    return _MD.render(markdown)


def stylesheet() -> str:
    """The HTML export's stylesheet (light, dark and print), for pages that should match."""
    return _CSS


def demote_headings(markdown: str) -> str:
    """``markdown`` with every heading one level lower (H6 stays H6).

    Headings are found by parsing, so a ``#`` line inside a fenced or indented code block
    is never touched. Setext headings become H2 (``===`` → ``---``) or ATX H3.
    """
    markdown = re.sub(r"\r\n?", "\n", markdown)  # as the parser sees it: line numbers agree
    lines: list[str | None] = list(markdown.split("\n"))
    tokens = _MD.parse(markdown)
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or token.map is None:
            continue
        start, end = token.map
        if token.markup.startswith("#"):  # ATX: the line's first run of # is the marker
            lines[start] = _ATX_MARKER.sub(_one_more_hash, str(lines[start]), count=1)
        elif token.markup.startswith("="):  # setext H1 -> setext H2
            lines[end - 1] = str(lines[end - 1]).replace("=", "-")
        elif token.level == 0:  # setext H2 at top level (not in a list or quote) -> ATX H3
            lines[start] = "### " + " ".join(tokens[i + 1].content.split("\n"))
            lines[start + 1 : end] = [None] * (end - start - 1)
    return "\n".join(line for line in lines if line is not None)


def _sections(course: dict[str, Any], lessons: list[dict[str, Any]]) -> list[_Section]:
    """One section per module in order; a lesson whose module is unknown goes last."""
    by_order: dict[int, dict[str, Any]] = {}
    for lesson in lessons:
        order = int(lesson["order"])
        if order not in by_order or lesson.get("version", 0) > by_order[order].get("version", 0):
            by_order[order] = lesson
    sections: list[_Section] = []
    modules = sorted(course.get("modules") or [], key=lambda m: int(m["order"]))
    for module in modules:
        order = int(module["order"])
        title = _one_line(module.get("title") or f"Module {order}")
        lesson = by_order.pop(order, None)
        if lesson is None:
            text = f"## {title}\n\n"
            if module.get("description"):
                text += f"{module['description'].strip()}\n\n"
            sections.append(_Section(f"module-{order}", title, text + f"*{NOT_WRITTEN}*\n", False))
        else:
            sections.append(_Section(f"module-{order}", title, _lesson_markdown(lesson), True))
    for order, lesson in sorted(by_order.items()):
        title = _one_line(lesson.get("title") or f"Lesson {order}")
        sections.append(_Section(f"module-{order}", title, _lesson_markdown(lesson), True))
    return sections


def _lesson_markdown(lesson: dict[str, Any]) -> str:
    """The lesson's markdown demoted, headed by its title unless it starts with an H1."""
    markdown = (lesson.get("markdown") or "").replace("\r\n", "\n").strip("\n")
    first = next((t for t in _MD.parse(markdown) if t.block and t.nesting >= 0), None)
    starts_with_h1 = first is not None and first.type == "heading_open" and first.tag == "h1"
    demoted = demote_headings(markdown)
    if starts_with_h1:
        return demoted + "\n"
    return f"## {_one_line(lesson.get('title') or 'Lesson')}\n\n{demoted}\n"


def _profile_line(course: dict[str, Any]) -> str:
    profile = course.get("profile") or {}
    parts = []
    if profile.get("level"):
        parts.append(f"Level: {profile['level']}")
    if profile.get("duration_hours"):
        hours = float(profile["duration_hours"])
        parts.append(f"Duration: {hours:g} hour{'' if hours == 1 else 's'}")
    if profile.get("language"):
        parts.append(f"Language: {profile['language']}")
    return _one_line(" · ".join(parts))


def _one_more_hash(marker: re.Match[str]) -> str:
    return marker[0] + "#" if len(marker[0]) < 6 else marker[0]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _link_text(text: str) -> str:
    return re.sub(r"([\\\[\]])", r"\\\1", text)


@cache
def _content_security_policy() -> str:
    """Nothing loads from anywhere; only our two inline scripts run (by hash)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode() + "'"
        for js in (mermaid_script(), _MERMAID_INIT)
    )
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:"
    )


def _render_fence(
    self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    if token.info.strip().split(maxsplit=1)[:1] == ["mermaid"]:
        return f'<pre class="mermaid">{html.escape(token.content)}</pre>\n'
    return RendererHTML.fence(self, tokens, idx, options, env)


def _render_image(
    self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # Only inline data survives offline (and the CSP); anything else becomes a link.
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    if src.startswith("data:image/"):
        return RendererHTML.image(self, tokens, idx, options, env)
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    return (
        f'<a class="image-link" href="{html.escape(src)}" rel="noopener noreferrer">'
        f"[image: {html.escape(alt)}]</a>"
    )


def _new_markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("image", _render_image)
    return md


_MD = _new_markdown()

_MERMAID_INIT = (
    "mermaid.initialize({startOnLoad: true, securityLevel: 'strict', theme: "
    "window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'default'});"
)

_CSS = """
:root { color-scheme: light dark; --bg: #fdfdfc; --fg: #1f2328; --muted: #59636e;
  --accent: #0b63c4; --rule: #d1d9e0; --code-bg: #f3f4f6; --quote: #8c959f; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15181c; --fg: #e6e8eb; --muted: #9aa4af; --accent: #6cb6ff;
    --rule: #343a42; --code-bg: #1f242a; --quote: #6e7781; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 17px/1.65 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 46rem; margin: 0 auto; padding: 2.5rem 1.25rem 4rem; }
h1, h2, h3, h4, h5, h6 { line-height: 1.25; margin: 2rem 0 0.75rem; }
h1 { font-size: 2.2rem; margin-top: 0; }
h2 { font-size: 1.6rem; border-bottom: 1px solid var(--rule); padding-bottom: 0.3rem; }
h3 { font-size: 1.3rem; }
a { color: var(--accent); }
.profile, .pending { color: var(--muted); }
.toc { border: 1px solid var(--rule); border-radius: 8px; padding: 0.5rem 1.25rem 1rem; }
.toc h2 { border: 0; margin-top: 0.75rem; font-size: 1.2rem; }
.lesson { margin-top: 3rem; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  font-size: 0.9em; }
:not(pre) > code { background: var(--code-bg); padding: 0.1em 0.35em; border-radius: 4px; }
pre { background: var(--code-bg); padding: 0.9rem 1rem; border-radius: 6px; overflow-x: auto;
  line-height: 1.45; }
pre.mermaid { background: transparent; text-align: center; }
blockquote { margin: 1rem 0; padding: 0 1rem; border-left: 4px solid var(--quote);
  color: var(--muted); }
table { border-collapse: collapse; margin: 1rem 0; display: block; overflow-x: auto; }
th, td { border: 1px solid var(--rule); padding: 0.4rem 0.75rem; text-align: left; }
th { background: var(--code-bg); }
img, svg { max-width: 100%; height: auto; }
hr { border: 0; border-top: 1px solid var(--rule); margin: 2rem 0; }
@media print {
  :root { --bg: #fff; --fg: #000; --muted: #444; --accent: #000; --code-bg: #f3f3f3; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  .lesson { break-before: page; margin-top: 0; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  pre, table, blockquote, svg, h2, h3 { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
  a[href^="http"]::after { content: " (" attr(href) ")"; font-size: 0.85em; }
}
"""
