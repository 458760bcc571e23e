"""The labelled retrieval set: a small corpus of the four formats and questions, each
with the passage that answers it; ingestion and recall@5 / MRR per retrieval method.

A question's answer is named by text only its passage contains (whitespace ignored), so
the labels stay true whatever the chunker does with the rest of the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.content import sources
from services.content.embeddings import Embedder
from services.content.retrieval import Retriever
from services.content.store import chunks
from shared.contracts.sources import IngestSource, IngestSourcePayload
from shared.ids import derived_id
from tests.support.pdf import make_pdf

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
QUESTIONS = HERE / "questions.jsonl"
MODES = ("vector", "fts", "hybrid")
TENANT, USER = "bench", "bench-user"


def _flat(text: str) -> str:
    return " ".join(text.split())


def pdf_from_outline(text: str) -> bytes:
    """The PDF the corpus's ``*-pdf.txt`` describes: a page per ``## `` title."""
    pages: list[list[str]] = []
    titles: list[tuple[str, int]] = []
    for line in text.splitlines():
        if line.startswith("# "):
            continue
        if line.startswith("## "):
            titles.append((line[3:].strip(), len(pages)))
            pages.append([])
        elif pages:
            pages[-1].append(line)
    return make_pdf(pages, bookmarks=titles)


def corpus_files() -> dict[str, bytes]:
    """File name → bytes, the PDF built from its outline."""
    files: dict[str, bytes] = {}
    for path in sorted(CORPUS.iterdir()):
        if path.name.endswith("-pdf.txt"):
            files[path.name.replace("-pdf.txt", ".pdf")] = pdf_from_outline(path.read_text())
        else:
            files[path.name] = path.read_bytes()
    return files


def questions() -> list[dict[str, str]]:
    return [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]


@dataclass
class Corpus:
    course_id: str
    chunks: int
    seconds: float
    source_ids: dict[str, str] = field(default_factory=dict)


async def ingest_corpus(
    sessionmaker: Any, embedder: Embedder, haystack_sections: int = 0, run: int = 0
) -> Corpus:
    """Ingest every corpus file (and ``haystack_sections`` of distractors) into a new
    course; how long it took.

    Ids derive from ``run`` and the file names: passages that fuse to the same score are
    ordered by chunk id, so random ids would make a result flip between runs.
    """

    async def publish(_: Any) -> None:
        return None

    deps = sources.SourceDeps(
        sessionmaker=sessionmaker,
        embedder=embedder,
        publish=publish,
        wake_relay=lambda: None,
        max_bytes=10_000_000,
        max_per_course=20,
    )
    corpus = Corpus(course_id=f"retrieval-set-{run}-{haystack_sections}", chunks=0, seconds=0.0)
    started = time.perf_counter()
    files = corpus_files()
    if haystack_sections:
        files["stdlib-reference.md"] = haystack(haystack_sections)
    for name, data in files.items():
        source_id = derived_id(corpus.course_id, name)
        await sources.ingest_source(
            IngestSource(
                job_id="bench",
                correlation_id="bench",
                tenant_id=TENANT,
                user_id=USER,
                payload=IngestSourcePayload(
                    course_id=corpus.course_id,
                    source_id=source_id,
                    filename=name,
                    content_sha256=hashlib.sha256(data).hexdigest(),
                    size_bytes=len(data),
                    content_base64=base64.b64encode(data).decode(),
                ),
            ),
            deps,
        )
        corpus.source_ids[name] = source_id
    corpus.seconds = time.perf_counter() - started
    async with sessionmaker() as session:
        rows = await session.execute(
            select(chunks.c.chunk_id).where(chunks.c.course_id == corpus.course_id)
        )
        corpus.chunks = len(rows.all())
    return corpus


async def answer_chunks(sessionmaker: Any, corpus: Corpus) -> list[str]:
    """The chunk answering each question (exactly one must contain its text)."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(chunks.c.chunk_id, chunks.c.source_id, chunks.c.text).where(
                    chunks.c.course_id == corpus.course_id
                )
            )
        ).all()
    answers = []
    for q in questions():
        source_id = corpus.source_ids[q["file"]]
        wanted = _flat(q["contains"])
        hits = [r.chunk_id for r in rows if r.source_id == source_id and wanted in _flat(r.text)]
        if len(hits) != 1:
            raise ValueError(f"label {q['contains']!r} matches {len(hits)} chunks of {q['file']}")
        answers.append(hits[0])
    return answers


@dataclass
class Scores:
    mode: str
    recall_at_5: float
    mrr: float
    p50_ms: float
    p95_ms: float
    misses: list[str]


async def evaluate(retriever: Retriever, corpus: Corpus, answers: list[str]) -> list[Scores]:
    """recall@5, MRR (over the top 10) and query latency per method."""
    results = []
    asked = questions()
    for mode in MODES:
        ranks: list[int | None] = []
        latencies: list[float] = []
        for q, answer in zip(asked, answers, strict=True):
            started = time.perf_counter()
            found = await retriever.search(
                corpus.course_id,
                TENANT,
                USER,
                q["question"],
                k=10,
                mode=mode,  # type: ignore[arg-type]
            )
            latencies.append((time.perf_counter() - started) * 1000)
            ids = [p.chunk_id for p in found]
            ranks.append(ids.index(answer) + 1 if answer in ids else None)
        hits = [r for r in ranks if r is not None and r <= 5]
        latencies.sort()
        results.append(
            Scores(
                mode=mode,
                recall_at_5=len(hits) / len(ranks),
                mrr=sum(1 / r for r in ranks if r is not None) / len(ranks),
                p50_ms=statistics.median(latencies),
                p95_ms=latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)],
                misses=[q["question"] for q, r in zip(asked, ranks, strict=True) if not r or r > 5],
            )
        )
    return results


# Modules whose documentation could answer the labelled questions (asyncio, threads,
# queues, time): left out of the haystack so that a label stays the only right answer.
HAYSTACK_MODULES = (
    "json csv re string textwrap difflib decimal fractions statistics random datetime "
    "calendar collections heapq bisect functools itertools operator pathlib shutil tempfile "
    "zipfile tarfile gzip hashlib hmac secrets base64 email.message http.client "
    "urllib.parse xml.etree.ElementTree sqlite3 logging argparse unittest doctest pdb pickle "
    "copy pprint enum dataclasses typing inspect ast dis tokenize gettext locale ipaddress "
    "uuid html.parser configparser tomllib wave colorsys codecs io os.path glob fnmatch "
    "filecmp struct array weakref types abc numbers math cmath mailbox smtplib ftplib "
    "imaplib poplib telnetlib xmlrpc.client plistlib netrc shelve dbm zlib bz2 lzma"
).split()


def haystack(max_sections: int) -> bytes:
    """Distractor text at a course's scale: the standard library's docstrings as Markdown
    (a section per documented function or class), deterministic for a Python version."""
    import importlib
    import inspect
    import warnings

    lines: list[str] = []
    sections = 0
    for name in HAYSTACK_MODULES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
        lines.append(f"# The {name} module\n\n{inspect.getdoc(module) or ''}\n")
        for attr, value in sorted(vars(module).items()):
            doc = inspect.getdoc(value) if not attr.startswith("_") else None
            if not doc or len(doc.split()) < 12 or getattr(value, "__module__", name) != name:
                continue
            lines.append(f"## {name}.{attr}\n\n{doc}\n")
            sections += 1
            if sections >= max_sections:
                return "\n".join(lines).encode()
    return "\n".join(lines).encode()
