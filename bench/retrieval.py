"""Retrieval over course sources: recall@5 and MRR for vector-only, full-text-only and
hybrid (RRF) search on the labelled set in ``tests/retrieval``, with ingestion
throughput (chunks/s, the packaged local model) and query latency (p50/p95).

    .venv/bin/python bench/retrieval.py [--repeat 3]

Runs against its own database (``lectern_bench_rag``, recreated), no broker needed:
ingestion and search are called as the content service calls them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from services.content.embeddings import LocalMiniLM  # noqa: E402
from services.content.retrieval import Retriever, detect_backend  # noqa: E402
from shared.db import make_sessionmaker  # noqa: E402
from tests.retrieval.evaluate import answer_chunks, evaluate, ingest_corpus  # noqa: E402
from tests.support.infra import reset_database  # noqa: E402

DB = "lectern_bench_rag"


async def run(pg: str, repeat: int, haystack: int) -> int:
    from shared.migrate import migrate

    await reset_database(pg, DB)
    url = f"postgresql+asyncpg://{pg}/{DB}"
    await asyncio.to_thread(migrate, url)
    engine = create_async_engine(url)
    sessionmaker = make_sessionmaker(engine)
    embedder = LocalMiniLM()
    started = time.perf_counter()
    await embedder.model()
    print(f"model: {embedder.name}, loaded in {time.perf_counter() - started:.1f} s")
    try:
        async with sessionmaker() as session:
            backend = await detect_backend(session)
        retriever = Retriever(sessionmaker, embedder, backend)
        rates = []
        for run in range(repeat):
            corpus = await ingest_corpus(sessionmaker, embedder, haystack, run)
            rates.append(corpus.chunks / corpus.seconds)
        print(
            f"ingestion: {corpus.chunks} chunks (4 labelled files: md, html, txt, pdf; "
            f"{haystack} sections of distractors) in "
            f"{corpus.seconds:.2f} s; best of {repeat}: {max(rates):.1f} chunks/s"
        )
        answers = await answer_chunks(sessionmaker, corpus)
        await evaluate(retriever, corpus, answers)  # warm the caches
        scores = await evaluate(retriever, corpus, answers)
        print(f"vector search: {backend}; {len(answers)} labelled questions")
        print(f"{'method':<8} {'recall@5':>9} {'MRR@10':>7} {'p50 ms':>7} {'p95 ms':>7}")
        for s in scores:
            print(
                f"{s.mode:<8} {s.recall_at_5:>9.3f} {s.mrr:>7.3f} {s.p50_ms:>7.1f} {s.p95_ms:>7.1f}"
            )
        for s in scores:
            for miss in s.misses:
                print(f"  {s.mode} missed: {miss}")
        by = {s.mode: s for s in scores}
        if by["hybrid"].recall_at_5 <= max(by["vector"].recall_at_5, by["fts"].recall_at_5):
            print("hybrid does not beat both single methods on recall@5")
            return 1
        return 0
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="ingestion runs (best is shown)")
    parser.add_argument(
        "--haystack",
        type=int,
        default=2000,
        help="sections of distractor text (the standard library's docstrings) in the course",
    )
    args = parser.parse_args()
    pg = os.environ.get("LECTERN_BENCH_PG", "postgres@127.0.0.1:5432")
    raise SystemExit(asyncio.run(run(pg, args.repeat, args.haystack)))


if __name__ == "__main__":
    main()
