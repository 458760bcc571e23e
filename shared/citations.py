"""Grounding generated text in retrieved passages: numbered passages in, citations out.

The prompt lists each passage as a marker line ``[S1]``, then ``source: notes.md, p. 3 —
Section`` and ``text: ...``, each on one line: text from an uploaded file cannot start a
line of its own and pass for an instruction. The model cites with the same markers.
:func:`resolve` keeps only markers that name a passage it was given (outside code,
where ``[S1]`` could be an index), drops the rest from the text, and returns the cited
passages: nothing is presented as coming from the sources unless it was attached to a
passage that was actually given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

SOURCES_HEADER = "=== SOURCES ==="
_MARKER = re.compile(r"\s?\[S(\d{1,3})\]")
_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
QUOTE_CHARS = 240


def _flat(text: Any) -> str:
    return " ".join(str(text).split())


def label(passage: Mapping[str, Any]) -> str:
    """How a passage is cited: file, page (PDF) and section, on one line."""
    parts = [_flat(passage["filename"])]
    if passage.get("page"):
        parts.append(f"p. {passage['page']}")
    text = ", ".join(parts)
    section = _flat(passage.get("section") or "")
    return f"{text} — {section}" if section else text


def format_passages(passages: Iterable[Mapping[str, Any]]) -> str:
    """The passages as the prompt shows them, numbered S1, S2, ... in ranking order."""
    blocks = [
        f"[S{n}]\nsource: {label(p)}\ntext: {_flat(p['text'])}"
        for n, p in enumerate(passages, start=1)
    ]
    return "\n\n".join(blocks)


def _outside_code(text: str) -> list[tuple[bool, str]]:
    """``text`` in pieces, each marked True when it is prose (not a fenced code block)."""
    pieces: list[tuple[bool, str]] = []
    prose, start = True, 0
    for fence in _FENCE.finditer(text):
        line_end = text.find("\n", fence.end())
        cut = len(text) if line_end == -1 else line_end + 1
        if prose:
            pieces.append((True, text[start : fence.start()]))
            start = fence.start()
        else:
            pieces.append((False, text[start:cut]))
            start = cut
        prose = not prose
    pieces.append((prose, text[start:]))
    return pieces


def resolve(text: str, passages: list[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The text without markers naming no given passage, and the passages it cites.

    Citations come in order of first use, each ``{marker, source_id, filename, page,
    section, chunk_id, quote}``.
    """
    cited: dict[int, dict[str, Any]] = {}

    def keep(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(passages):
            return ""  # a passage that was not given: the claim is not the sources'
        if n not in cited:
            p = passages[n - 1]
            quote = " ".join(str(p["text"]).split())
            cited[n] = {
                "marker": f"S{n}",
                "source_id": p["source_id"],
                "filename": p["filename"],
                "page": p.get("page"),
                "section": p.get("section") or "",
                "chunk_id": p["chunk_id"],
                "quote": quote if len(quote) <= QUOTE_CHARS else quote[: QUOTE_CHARS - 1] + "…",
            }
        return match.group(0)

    out = [_MARKER.sub(keep, piece) if prose else piece for prose, piece in _outside_code(text)]
    return "".join(out), list(cited.values())


def keep_known(text: str, citations: list[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """For a rewrite of cited text: markers of the earlier citations stay, others go."""
    by_number = {int(str(c["marker"])[1:]): c for c in citations}
    used: dict[int, dict[str, Any]] = {}

    def keep(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in by_number:
            return ""
        used.setdefault(n, dict(by_number[n]))
        return match.group(0)

    out = [_MARKER.sub(keep, piece) if prose else piece for prose, piece in _outside_code(text)]
    return "".join(out), list(used.values())
