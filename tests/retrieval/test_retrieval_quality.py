"""The labelled retrieval set, in a course with distractors: each method finds the answers,
and hybrid (RRF) is at least as good as the better single method on recall@5 and better
than both on MRR. ``bench/retrieval.py`` runs the same at a course's full scale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.content.embeddings import LocalMiniLM
from services.content.retrieval import Retriever
from shared.db import make_sessionmaker
from tests.retrieval.evaluate import answer_chunks, evaluate, ingest_corpus, questions

pytestmark = pytest.mark.integration

HAYSTACK_SECTIONS = 150


@pytest.fixture
async def sessionmaker(infra: dict[str, str]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(infra["DATABASE_URL"])
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def test_hybrid_retrieval_beats_each_single_method(
    sessionmaker: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    embedder = LocalMiniLM(tmp_path)
    corpus = await ingest_corpus(sessionmaker, embedder, HAYSTACK_SECTIONS)
    assert corpus.chunks > 150
    answers = await answer_chunks(sessionmaker, corpus)  # every label names one chunk
    assert len(answers) == len(questions()) >= 50
    scores = {s.mode: s for s in await evaluate(Retriever(sessionmaker, embedder), corpus, answers)}
    vector, fts, hybrid = scores["vector"], scores["fts"], scores["hybrid"]
    report = {m: (round(s.recall_at_5, 3), round(s.mrr, 3)) for m, s in scores.items()}
    assert vector.recall_at_5 >= 0.9 and fts.recall_at_5 >= 0.85, report
    assert hybrid.recall_at_5 >= max(vector.recall_at_5, fts.recall_at_5), report
    assert hybrid.mrr > max(vector.mrr, fts.mrr), report
