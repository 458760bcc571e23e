"""Text out of each source format, and chunks that respect headings and paragraphs."""

from __future__ import annotations

import pytest

from services.content.chunking import MAX_WORDS, TARGET_WORDS, chunk_blocks
from services.content.extraction import (
    UnsupportedFormat,
    detect_kind,
    extract,
)
from shared.messaging import PermanentError
from tests.support.pdf import make_pdf

MARKDOWN = """---
title: notes
---
# Asyncio notes

Intro paragraph about coroutines.

## The event loop

The loop runs one task at a time.
It switches at every await.

```python
async def main():

    await asyncio.sleep(1)
```

Setext section
--------------

Under a setext heading.
"""


def sections(data: bytes, kind: str) -> list[tuple[str, str]]:
    blocks, _ = extract(data, kind, f"file.{kind}")  # type: ignore[arg-type]
    return [(c.section, c.text) for c in chunk_blocks(blocks)]


def test_markdown_headings_paragraphs_and_code() -> None:
    got = sections(MARKDOWN.encode(), "markdown")
    assert got[0] == ("Asyncio notes", "Intro paragraph about coroutines.")
    section, text = got[1]
    assert section == "Asyncio notes > The event loop"
    assert "one task at a time.\nIt switches" in text
    assert "async def main():\n\n    await asyncio.sleep(1)" in text  # code kept whole
    assert got[2] == ("Asyncio notes > Setext section", "Under a setext heading.")
    assert all("title: notes" not in t for _, t in got)  # front matter dropped


def test_plain_text_paragraphs_and_title_lines() -> None:
    text = (
        "Chapter One\n\nFirst paragraph, two\nlines.\n\nSecond paragraph.\n\n"
        "Summary\n=======\n\nEnd."
    )
    got = sections(text.encode("cp1252"), "text")
    assert got == [
        ("Chapter One", "First paragraph, two\nlines.\n\nSecond paragraph."),
        ("Summary", "End."),
    ]


def test_text_postgresql_cannot_store_is_cleaned() -> None:
    data = b"Title line\n\n" + b"x" * 5000 + b"\n\nNUL\x00 inside."
    blocks, _ = extract(data, "text", "nul.txt")
    assert blocks[-1].text == "NUL inside."
    assert all("\x00" not in b.text for b in blocks)


def test_text_that_is_not_utf8_is_read_as_windows_1252() -> None:
    [(_, text)] = sections("Caf\u00e9 cr\u00e8me is sweet.".encode("cp1252"), "text")
    assert text == "Caf\u00e9 cr\u00e8me is sweet."


def test_html_keeps_structure_and_drops_scripts_and_navigation() -> None:
    html = b"""<html><head><title>T</title><style>p{}</style></head><body>
    <nav>Home | About</nav><h1>Guide</h1><p>Intro &amp; more.</p>
    <h2>Tasks</h2><ul><li>create_task schedules</li><li>gather waits</li></ul>
    <script>alert('x')</script><pre>x = 1
y = 2</pre></body></html>"""
    got = sections(html, "html")
    assert got[0] == ("Guide", "Intro & more.")
    assert got[1][0] == "Guide > Tasks"
    assert "create_task schedules\n\ngather waits" in got[1][1]
    assert "x = 1\ny = 2" in got[1][1]
    assert not any("alert" in t or "Home" in t for _, t in got)


def test_pdf_pages_and_bookmarks_become_citations() -> None:
    data = make_pdf(
        [
            ["The event loop runs one task at a time.", "It switches at every await."],
            ["A cancelled task gets CancelledError at its next await."],
        ],
        bookmarks=[("Event loop", 0), ("Cancellation", 1)],
    )
    blocks, pages = extract(data, "pdf", "guide.pdf")
    assert pages == 2
    got = [(c.section, c.page, c.text) for c in chunk_blocks(blocks)]
    assert got[0][:2] == ("Event loop", 1) and "one task at a time" in got[0][2]
    assert got[1][:2] == ("Cancellation", 2) and "CancelledError" in got[1][2]


def test_unreadable_pdf_is_a_permanent_error_naming_the_file() -> None:
    with pytest.raises(PermanentError, match=r"broken\.pdf: not a readable PDF"):
        extract(b"%PDF-1.4\nthis is not a pdf", "pdf", "broken.pdf")


def test_format_from_extension_media_type_or_magic() -> None:
    assert detect_kind("notes.MD") == "markdown"
    assert detect_kind("page.htm") == "html"
    assert detect_kind("upload", "text/plain; charset=utf-8") == "text"
    assert detect_kind("scan.bin", None, b"%PDF-1.7") == "pdf"
    with pytest.raises(UnsupportedFormat, match="unsupported file type"):
        detect_kind("slides.pptx", "application/vnd.ms-powerpoint")
    with pytest.raises(UnsupportedFormat, match="binary content"):
        extract(b"\x00\x01\x02", "text", "x.txt")


def test_chunks_pack_paragraphs_and_never_cross_a_heading() -> None:
    para = "word " * 40
    text = "# A\n\n" + "\n\n".join([para] * 7) + "\n\n# B\n\nshort one\n"
    got = chunk_blocks(extract(text.encode(), "markdown", "a.md")[0])
    a_chunks = [c for c in got if c.section == "A"]
    assert len(a_chunks) == 4  # 7 paragraphs of 40 words, packed 2 by 2 under 110 words
    assert all(c.words <= TARGET_WORDS for c in a_chunks)
    assert [c.text for c in got if c.section == "B"] == ["short one"]
    assert [c.ordinal for c in got] == list(range(len(got)))


def test_a_long_paragraph_is_split_at_sentences() -> None:
    sentence = "This sentence has exactly eight words in it. "
    got = chunk_blocks(extract((sentence * 60).encode(), "text", "long.txt")[0])
    assert len(got) >= 3
    assert all(c.words <= MAX_WORDS for c in got)
    assert all(c.text.endswith("in it.") for c in got)
    assert sum(c.words for c in got) == 8 * 60
