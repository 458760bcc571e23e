"""Embeddings of source chunks and queries, from the configured model.

``LECTERN_EMBEDDING_MODEL`` names it: ``local/all-MiniLM-L6-v2`` (the default) is the
packaged model run in numpy (:mod:`services.content.minilm`), offline and loaded on
first use, never on the start path; any other name is a litellm embedding model
(``openai/text-embedding-3-small``, ``ollama/nomic-embed-text`` with ``LLM_API_BASE``).
Every vector comes back L2-normalised, so a dot product is the cosine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shared.settings import LecternSettings

log = logging.getLogger("lectern.content.embeddings")

LOCAL_MODEL = "local/all-MiniLM-L6-v2"


class Embedder(Protocol):
    """Turns texts into unit vectors, one row per text."""

    name: str

    async def embed(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 rows of length 1."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lectern/models`` (``~/.cache/lectern/models``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lectern" / "models"


class LocalMiniLM:
    """The packaged all-MiniLM-L6-v2, loaded once (in a thread) on first use."""

    name = LOCAL_MODEL
    dim = 384

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()
        self._model: Any = None
        self._loading: asyncio.Lock | None = None

    def _load(self) -> Any:
        from services.content import minilm

        started = time.perf_counter()
        model = minilm.load(self.cache_dir)
        log.info(
            "embedding model %s loaded in %.1f s from %s",
            self.name,
            time.perf_counter() - started,
            self.cache_dir,
        )
        return model

    async def model(self) -> Any:
        """The loaded model (loading it the first time, off the event loop)."""
        if self._model is None:
            if self._loading is None:
                self._loading = asyncio.Lock()
            async with self._loading:
                if self._model is None:
                    self._model = await asyncio.to_thread(self._load)
        return self._model

    async def embed(self, texts: list[str]) -> np.ndarray:
        model = await self.model()
        return await asyncio.to_thread(model.encode, texts)


class LiteLLMEmbedder:
    """Any litellm embedding model, asked in batches."""

    def __init__(self, settings: LecternSettings, model: str, batch: int = 64) -> None:
        self.name = model
        self.settings = settings
        self.batch = batch

    async def embed(self, texts: list[str]) -> np.ndarray:
        import litellm

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            response = await litellm.aembedding(
                model=self.name,
                input=texts[start : start + self.batch],
                api_base=self.settings.llm_api_base,
                api_key=self.settings.llm_api_key,
                timeout=self.settings.llm_timeout_s,
            )
            rows += [item["embedding"] for item in response.data]
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return normalise(np.array(rows, dtype=np.float32))


def make_embedder(settings: LecternSettings) -> Embedder:
    """The embedder ``settings.embedding_model`` names."""
    if settings.embedding_model == LOCAL_MODEL:
        cache = Path(settings.model_cache_dir) if settings.model_cache_dir else None
        return LocalMiniLM(cache)
    return LiteLLMEmbedder(settings, settings.embedding_model)
