"""Text out of a source file, as blocks: headings, paragraphs and code, with their page.

Markdown, plain text, HTML and PDF (pypdf). Every format gives the same shape, so one
chunker (:mod:`services.content.chunking`) respects headings and paragraphs for all.
Input that can never be read is a :class:`~shared.messaging.PermanentError` saying why.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Literal

from shared.messaging import PermanentError

Kind = Literal["markdown", "text", "html", "pdf"]
EXTENSIONS: dict[str, Kind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
MEDIA_TYPES: dict[str, Kind] = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "text",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
}


class UnsupportedFormat(PermanentError):
    """Not a format Lectern reads."""


@dataclass(frozen=True)
class Block:
    """One piece of a document: ``heading`` (with ``level``), ``para`` or ``code``."""

    kind: Literal["heading", "para", "code"]
    text: str
    level: int = 0
    page: int | None = None


def detect_kind(filename: str, media_type: str | None = None, head: bytes = b"") -> Kind:
    """The format of a file from its content (PDF magic), extension or media type."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    base = (media_type or "").split(";", 1)[0].strip().lower()
    if base in MEDIA_TYPES:
        return MEDIA_TYPES[base]
    raise UnsupportedFormat(
        f"{filename}: unsupported file type (use Markdown .md, plain text .txt, HTML .html or PDF)"
    )


def decode_text(data: bytes, filename: str) -> str:
    """UTF-8 (with or without BOM), else Windows-1252: what text files are in practice."""
    if b"\x00" in data[:4096]:
        raise UnsupportedFormat(f"{filename}: binary content, not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def extract(data: bytes, kind: Kind, filename: str) -> tuple[list[Block], int | None]:
    """The blocks of the file and, for a PDF, its page count (text PostgreSQL can store:
    no NUL characters, no unpaired surrogates)."""
    pages: int | None = None
    if kind == "pdf":
        blocks, pages = pdf_blocks(data, filename)
    else:
        text = decode_text(data, filename)
        if kind == "html":
            blocks = html_blocks(text)
        elif kind == "markdown":
            blocks = markdown_blocks(text)
        else:
            blocks = text_blocks(text)
    return [_storable(b) for b in blocks], pages


def _storable(block: Block) -> Block:
    text = block.text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return block if text == block.text else Block(block.kind, text, block.level, block.page)


# ------------------------------------------------------------------------- markdown

_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")


def markdown_blocks(text: str, page: int | None = None) -> list[Block]:
    """Headings (ATX and setext), fenced code kept whole, paragraphs split at blank lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is not None:
            lines = lines[end + 1 :]
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        joined = "\n".join(para).strip()
        if joined:
            blocks.append(Block("para", joined, page=page))
        para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            body = [line]
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(fence.group(1)):
                body.append(lines[i])
                i += 1
            body.append(lines[i] if i < len(lines) else fence.group(1))
            blocks.append(Block("code", "\n".join(body), page=page))
            i += 1
            continue
        heading = _ATX.match(line)
        if heading:
            flush()
            blocks.append(Block("heading", heading.group(2), len(heading.group(1)), page))
        elif para and len(para) == 1 and _SETEXT.match(line) and line.strip():
            title = para[0].strip()
            para.clear()
            blocks.append(Block("heading", title, 1 if line.strip()[0] == "=" else 2, page))
        elif not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


# ------------------------------------------------------------------------- plain text


def _looks_like_heading(paragraph: str) -> bool:
    """A one-line paragraph, short, starting with a capital or a number, no final stop."""
    if "\n" in paragraph or len(paragraph) > 70 or len(paragraph.split()) > 10:
        return False
    return bool(re.match(r"^[A-Z0-9]", paragraph)) and paragraph[-1] not in ".!?,;:)\"'"


def text_blocks(text: str, page: int | None = None) -> list[Block]:
    """Paragraphs at blank lines; a short title-like line alone is a heading."""
    blocks: list[Block] = []
    for para in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        para = para.strip()
        if not para:
            continue
        underline = re.match(r"^(.+)\n(=+|-+)$", para)
        if underline:
            level = 1 if underline.group(2)[0] == "=" else 2
            blocks.append(Block("heading", underline.group(1).strip(), level, page))
        elif _looks_like_heading(para):
            blocks.append(Block("heading", para, 2, page))
        else:
            blocks.append(Block("para", para, page=page))
    return blocks


# ------------------------------------------------------------------------- HTML

_SKIP = {"script", "style", "noscript", "template", "svg", "nav", "head", "iframe", "form"}
_BLOCKS = {
    "p", "li", "blockquote", "td", "th", "dd", "dt", "figcaption", "div", "section",
    "article", "main", "tr", "br", "table", "ul", "ol", "dl", "header", "footer", "aside",
}  # fmt: skip


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.skipping = 0
        self.heading = 0
        self.pre = 0

    def _flush(self) -> None:
        raw = "".join(self.buffer)
        self.buffer.clear()
        text = raw.strip("\n") if self.pre else " ".join(raw.split())
        if not text.strip():
            return
        if self.heading:
            self.blocks.append(Block("heading", " ".join(text.split()), self.heading))
        elif self.pre:
            self.blocks.append(Block("code", text))
        else:
            self.blocks.append(Block("para", text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif self.skipping:
            return
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = int(tag[1])
        elif tag == "pre":
            self._flush()
            self.pre += 1
        elif tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif self.skipping:
            return
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = 0
        elif tag == "pre":
            self._flush()
            self.pre = max(0, self.pre - 1)
        elif tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.buffer.append(data)


def html_blocks(text: str) -> list[Block]:
    """Headings h1-h6, text blocks and ``pre``; scripts, styles and navigation dropped."""
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    parser._flush()
    return parser.blocks


# ------------------------------------------------------------------------- PDF


def _outline_titles(reader: object) -> dict[int, list[tuple[int, str]]]:
    """Bookmarks by page index: ``{page: [(level, title)]}`` (empty when there are none)."""
    found: dict[int, list[tuple[int, str]]] = {}

    def walk(items: list[object], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)  # type: ignore[attr-defined]
            except Exception:  # a bookmark without a page: not a section marker
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if title and page is not None and page >= 0:
                found.setdefault(page, []).append((level, title))

    try:
        walk(list(reader.outline), 1)  # type: ignore[attr-defined]
    except Exception:  # a broken outline must not stop the text
        return {}
    return found


def _page_paragraphs(text: str) -> list[str]:
    """pypdf gives lines; paragraphs end at blank lines, else at a line closing a sentence."""
    text = text.replace("\r\n", "\n")
    if re.search(r"\n\s*\n", text):
        return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        current.append(line)
        if (re.search(r"[.!?:]\s*$", line) and len(line) < 60) or _looks_like_heading(line):
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def pdf_blocks(data: bytes, filename: str) -> tuple[list[Block], int]:
    """Each page's paragraphs with their page number; bookmarks become headings."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PermanentError(f"{filename}: the PDF is password-protected")
        pages = list(reader.pages)
    except PermanentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PermanentError(f"{filename}: not a readable PDF ({exc})") from exc
    outline = _outline_titles(reader)
    blocks: list[Block] = []
    for index, page in enumerate(pages):
        number = index + 1
        for level, title in outline.get(index, []):
            blocks.append(Block("heading", title, level, number))
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one damaged page: say which
            raise PermanentError(f"{filename}: page {number} cannot be read ({exc})") from exc
        for para in _page_paragraphs(text):
            kind = "heading" if _looks_like_heading(para) and not outline else "para"
            blocks.append(Block(kind, para, 2 if kind == "heading" else 0, number))
    return blocks, len(pages)
