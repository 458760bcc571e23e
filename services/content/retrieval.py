"""Hybrid retrieval over a course's sources: vectors and full text, fused by rank.

Vector similarity is exact: with pgvector installed the cosine is ranked in SQL
(``embedding::vector <=>``); without it, the course's vectors are read once into a
numpy matrix (cached per course until a source changes) and ranked with one matrix
product — milliseconds for thousands of chunks. Full text is PostgreSQL's ``ts_rank``
over the GIN-indexed tsvector, per word of the question (any word may match: a question
rarely shares all its words with the passage that answers it), each weighted by how rare
the word is among the course's chunks (BM25's IDF). The two
rankings are fused with reciprocal rank fusion (RRF, k = 10). Every query is filtered
to the course's sources of its owner.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sqlalchemy import TEXT, case, cast, func, literal, literal_column, or_, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG, TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession

from services.content.embeddings import Embedder
from services.content.sources import owned, searchable, text_search_config
from services.content.store import chunks, sources

log = logging.getLogger("lectern.content.retrieval")

Mode = Literal["hybrid", "vector", "fts"]
# RRF's k: smaller lets one method's top hit outrank passages both rank middling (60,
# the paper's value for fusing many deep TREC runs, did not; see docs/DESIGN.md)
RRF_K = 10
CANDIDATES = 50  # how deep each ranking goes into the fusion
CACHED_COURSES = 64


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk, what to cite it by, and how each method ranked it."""

    chunk_id: str
    source_id: str
    filename: str
    section: str
    page: int | None
    text: str
    score: float
    vector_rank: int | None
    fts_rank: int | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def detect_backend(session: AsyncSession) -> str:
    """``pgvector`` when the extension is installed in the database, else ``numpy``."""
    installed = await session.scalar(
        text("SELECT count(*) FROM pg_extension WHERE extname = 'vector'")
    )
    return "pgvector" if installed else "numpy"


def rrf(rankings: list[list[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: each id scores the sum of 1 / (k + rank) over the rankings."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class Retriever:
    """Searches a course's sources; one per process (it holds the vector cache)."""

    def __init__(self, sessionmaker: Any, embedder: Embedder, backend: str = "numpy") -> None:
        self.sessionmaker = sessionmaker
        self.embedder = embedder
        self.backend = backend
        self._cache: OrderedDict[tuple[str, str, str | None], Any] = OrderedDict()

    async def search(
        self,
        course_id: str,
        tenant_id: str,
        user_id: str | None,
        query: str,
        *,
        k: int = 5,
        mode: Mode = "hybrid",
    ) -> list[Passage]:
        """The ``k`` passages of the owner's course sources that best answer ``query``."""
        async with self.sessionmaker() as session:
            state = await self._sources(session, course_id, tenant_id, user_id)
            if not state:
                return []
            vector_ids: list[str] = []
            fts_ids: list[str] = []
            if mode in ("hybrid", "vector"):
                vector_ids = await self._vector(
                    session, state, course_id, tenant_id, user_id, query
                )
            if mode in ("hybrid", "fts"):
                languages = [s[3] for s in state]
                config = text_search_config(max(set(languages), key=languages.count))
                fts_ids = await self._fts(session, course_id, tenant_id, user_id, query, config)
            rankings = [r for r in (vector_ids, fts_ids) if r]
            fused = rrf(rankings)[:k]
            return await self._passages(session, fused, vector_ids, fts_ids)

    async def _sources(
        self, session: AsyncSession, course_id: str, tenant_id: str, user_id: str | None
    ) -> tuple[tuple[str, int, str, str], ...]:
        """(source_id, revision, embedding model, language) of each source: the cache key."""
        rows = await session.execute(
            select(
                sources.c.source_id,
                sources.c.revision,
                sources.c.embedding_model,
                sources.c.language,
            )
            .where(owned(sources, course_id, tenant_id, user_id))
            .order_by(sources.c.source_id)
        )
        return tuple((r[0], r[1], r[2], r[3]) for r in rows)

    async def _vector(
        self,
        session: AsyncSession,
        state: tuple[tuple[str, int, str, str], ...],
        course_id: str,
        tenant_id: str,
        user_id: str | None,
        query: str,
    ) -> list[str]:
        usable = [s[0] for s in state if s[2] == self.embedder.name]
        if not usable:  # embedded with another model: only full text can find them
            return []
        [q] = await self.embedder.embed([query])
        if self.backend == "pgvector":
            return await self._pgvector(session, usable, q)
        key = (course_id, tenant_id, user_id)
        cached = self._cache.get(key)
        if cached is None or cached[0] != state:
            rows = (
                await session.execute(
                    select(chunks.c.chunk_id, chunks.c.embedding).where(
                        chunks.c.source_id.in_(usable)
                    )
                )
            ).all()
            ids = [r.chunk_id for r in rows]
            vectors = [r.embedding for r in rows]
            # thousands of float lists: converted off the event loop
            matrix = await asyncio.to_thread(
                lambda: np.array(vectors, dtype=np.float32).reshape(len(ids), -1)
            )
            cached = (state, ids, matrix)
            self._cache[key] = cached
            while len(self._cache) > CACHED_COURSES:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        _, ids, matrix = cached
        if not ids:
            return []
        scores = matrix @ q
        depth = min(CANDIDATES, len(ids))
        top = np.argpartition(-scores, depth - 1)[:depth]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [ids[i] for i in top]

    async def _pgvector(self, session: AsyncSession, usable: list[str], q: np.ndarray) -> list[str]:
        literal = "[" + ",".join(f"{x:.7f}" for x in q) + "]"
        distance = literal_column("embedding::vector").op("<=>")(
            cast(literal, TEXT).op("::")(literal_column("vector"))
        )
        rows = await session.execute(
            select(chunks.c.chunk_id)
            .where(chunks.c.source_id.in_(usable))
            .order_by(distance)
            .limit(CANDIDATES)
        )
        return [r.chunk_id for r in rows]

    async def _fts(
        self,
        session: AsyncSession,
        course_id: str,
        tenant_id: str,
        user_id: str | None,
        query: str,
        config: str,
    ) -> list[str]:
        """Chunks ranked by ``ts_rank`` per query word, weighted by the word's rarity in
        the course (BM25's IDF): PostgreSQL's ranking alone counts a word every passage
        has ('use') as much as the one only the answer has."""
        regconfig = cast(config, REGCONFIG)
        words = await session.scalar(
            select(func.tsvector_to_array(func.to_tsvector(regconfig, searchable(query))))
        )
        if not words:
            return []
        mine = owned(chunks, course_id, tenant_id, user_id)
        terms = [cast(func.quote_literal(w), TSQUERY) for w in words]
        counts = (
            await session.execute(
                select(
                    func.count(),
                    *[func.count().filter(chunks.c.tsv.op("@@")(t)) for t in terms],
                ).where(mine)
            )
        ).one()
        total = int(counts[0])
        weighted = [
            (term, math.log(1 + (total - df + 0.5) / (df + 0.5)))
            for term, df in zip(terms, counts[1:], strict=True)
            if df
        ]
        if not weighted:
            return []
        score = sum(
            (
                case((chunks.c.tsv.op("@@")(term), func.ts_rank(chunks.c.tsv, term, 1)), else_=0)
                * idf
                for term, idf in weighted
            ),
            start=literal(0.0),
        )
        anyone = or_(*[chunks.c.tsv.op("@@")(term) for term, _ in weighted])
        rows = await session.execute(
            select(chunks.c.chunk_id)
            .where(mine, anyone)
            .order_by(score.desc(), chunks.c.chunk_id)
            .limit(CANDIDATES)
        )
        return [r.chunk_id for r in rows]

    async def _passages(
        self,
        session: AsyncSession,
        fused: list[tuple[str, float]],
        vector_ids: list[str],
        fts_ids: list[str],
    ) -> list[Passage]:
        if not fused:
            return []
        rows = await session.execute(
            select(
                chunks.c.chunk_id,
                chunks.c.source_id,
                chunks.c.section,
                chunks.c.page,
                chunks.c.text,
                sources.c.filename,
            )
            .join(sources, sources.c.source_id == chunks.c.source_id)
            .where(chunks.c.chunk_id.in_([chunk_id for chunk_id, _ in fused]))
        )
        found = {r.chunk_id: r for r in rows}
        vector_rank = {cid: n for n, cid in enumerate(vector_ids, start=1)}
        fts_rank = {cid: n for n, cid in enumerate(fts_ids, start=1)}
        return [
            Passage(
                chunk_id=cid,
                source_id=found[cid].source_id,
                filename=found[cid].filename,
                section=found[cid].section,
                page=found[cid].page,
                text=found[cid].text,
                score=round(score, 6),
                vector_rank=vector_rank.get(cid),
                fts_rank=fts_rank.get(cid),
            )
            for cid, score in fused
            if cid in found
        ]
