"""Blocks into chunks that respect headings and paragraphs.

A chunk never crosses a heading or a page, so each has one citation (``section`` is
its heading path, ``page`` its PDF page). Paragraphs are packed whole up to
``TARGET_WORDS``; a paragraph longer than ``MAX_WORDS`` is split at sentence ends
(code at line ends). The limits keep a chunk (with its heading) inside the embedding
model's 256 word pieces, so no text is cut off unseen by the vector search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.content.extraction import Block

TARGET_WORDS = 110
MAX_WORDS = 160
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    """A passage to store, embed and cite."""

    ordinal: int
    section: str
    page: int | None
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())

    def embedding_text(self) -> str:
        """What the vector is computed from: the heading path gives the passage context."""
        return f"{self.section}\n{self.text}" if self.section else self.text


def _words(text: str) -> int:
    return len(text.split())


def _split_long(block: Block) -> list[str]:
    """A block over ``MAX_WORDS`` in pieces of at most ``MAX_WORDS`` (sentences or lines)."""
    if _words(block.text) <= MAX_WORDS:
        return [block.text]
    units = block.text.split("\n") if block.kind == "code" else _SENTENCE_END.split(block.text)
    joiner = "\n" if block.kind == "code" else " "
    pieces: list[str] = []
    current: list[str] = []
    for unit in units:
        while _words(unit) > MAX_WORDS:  # one huge sentence: cut at the word limit
            words = unit.split()
            if current:
                pieces.append(joiner.join(current))
                current = []
            pieces.append(" ".join(words[:MAX_WORDS]))
            unit = " ".join(words[MAX_WORDS:])
        if current and _words(joiner.join([*current, unit])) > MAX_WORDS:
            pieces.append(joiner.join(current))
            current = []
        current.append(unit)
    if current:
        pieces.append(joiner.join(current))
    return [p for p in pieces if p.strip()]


def chunk_blocks(blocks: list[Block]) -> list[Chunk]:
    """The chunks of a document, in reading order."""
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []  # the open headings: (level, title)
    current: list[str] = []
    page: int | None = None

    def section() -> str:
        return " > ".join(title for _, title in path)

    def flush() -> None:
        if current:
            text = "\n\n".join(current).strip()
            if text:
                chunks.append(Chunk(len(chunks), section(), page, text))
            current.clear()

    for block in blocks:
        if block.page != page:
            flush()
            page = block.page
        if block.kind == "heading":
            flush()
            while path and path[-1][0] >= block.level:
                path.pop()
            path.append((block.level, " ".join(block.text.split())[:200]))
            continue
        for piece in _split_long(block):
            size = _words(piece)
            if current and _words("\n\n".join(current)) + size > TARGET_WORDS:
                flush()
            current.append(piece)
    flush()
    # a document of headings only still has its text
    if not chunks and path:
        chunks.append(Chunk(0, "", page, "\n".join(title for _, title in path)))
    return chunks
