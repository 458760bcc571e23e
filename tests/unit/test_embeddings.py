"""The packaged all-MiniLM-L6-v2 run in numpy gives sentence-transformers' vectors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from services.content import minilm
from services.content.embeddings import LOCAL_MODEL, LocalMiniLM, make_embedder, normalise
from shared.settings import LecternSettings

# sentence-transformers/all-MiniLM-L6-v2, "hello world": the first five dimensions as
# published by fastembed's test suite (computed there with the reference implementation)
HELLO_WORLD = np.array([-0.034478, 0.03102, 0.00673, 0.02611, -0.039362])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> minilm.MiniLM:
    return minilm.load(tmp_path_factory.mktemp("models"))


def test_matches_the_published_reference_embedding(model: minilm.MiniLM) -> None:
    [vector] = model.encode(["hello world"])
    assert vector.shape == (384,) and vector.dtype == np.float32
    assert np.allclose(vector[:5], HELLO_WORLD, atol=1e-4), vector[:5]
    assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5)


def test_paraphrases_are_close_and_unrelated_text_is_not(model: minilm.MiniLM) -> None:
    cat, rug, revenue = model.encode(
        [
            "The cat sits on the mat.",
            "A cat is sitting on a rug.",
            "Quarterly revenue grew by ten percent.",
        ]
    )
    assert float(cat @ rug) > 0.7
    assert abs(float(cat @ revenue)) < 0.15


def test_batching_and_padding_do_not_change_a_vector(model: minilm.MiniLM) -> None:
    texts = ["short", "a much longer sentence about coroutines and the event loop " * 5, "mid one"]
    together = model.encode(texts, batch_size=3)
    alone = np.vstack([model.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert model.encode([]).shape == (0, 384)


def test_long_text_is_truncated_to_the_model_window(model: minilm.MiniLM) -> None:
    assert model.tokens("word " * 1000) == minilm.MAX_TOKENS


def test_gelu_is_the_exact_one() -> None:
    x = np.linspace(-9, 9, 2001).astype(np.float32)
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(float)])
    assert np.abs(minilm._gelu(x.copy()) - exact).max() < 1e-6


def test_extracted_once_into_the_cache(tmp_path: Path) -> None:
    first = minilm.extract(tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert minilm.extract(tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


async def test_local_embedder_loads_lazily_off_the_event_loop(tmp_path: Path) -> None:
    embedder = make_embedder(
        LecternSettings(embedding_model=LOCAL_MODEL, model_cache_dir=str(tmp_path))
    )
    assert isinstance(embedder, LocalMiniLM)
    assert embedder._model is None  # nothing loaded by building it (worker start-up)
    vectors = await embedder.embed(["hello world", "flag embedding"])
    assert vectors.shape == (2, 384)
    assert np.allclose(vectors[0, :5], HELLO_WORLD, atol=1e-4)


def test_other_models_go_through_litellm() -> None:
    embedder = make_embedder(LecternSettings(embedding_model="openai/text-embedding-3-small"))
    assert embedder.name == "openai/text-embedding-3-small"
    assert not isinstance(embedder, LocalMiniLM)


def test_normalise_gives_unit_rows() -> None:
    rows = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]]) and rows.dtype == np.float32


async def test_a_litellm_model_is_asked_in_batches_and_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import litellm

    asked: list[dict[str, object]] = []

    async def aembedding(**kw: object) -> object:
        asked.append(kw)
        texts = kw["input"]
        assert isinstance(texts, list)

        class Answer:
            data = [{"embedding": [3.0, 4.0 + i]} for i, _ in enumerate(texts)]

        return Answer()

    monkeypatch.setattr(litellm, "aembedding", aembedding)
    settings = LecternSettings(
        embedding_model="ollama/nomic-embed-text", llm_api_base="http://ollama:11434"
    )
    embedder = make_embedder(settings)
    embedder.batch = 2  # type: ignore[attr-defined]
    vectors = await embedder.embed(["a", "b", "c"])
    assert [len(kw["input"]) for kw in asked] == [2, 1]  # type: ignore[arg-type]
    assert {kw["model"] for kw in asked} == {"ollama/nomic-embed-text"}
    assert {kw["api_base"] for kw in asked} == {"http://ollama:11434"}
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], [0.6, 0.8])
