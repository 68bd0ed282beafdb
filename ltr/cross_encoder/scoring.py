"""Loading a cross-encoder and scoring with it: (query, document) logits, and reranking a window's top.

``load_cross_encoder`` loads any cross-encoder directory, or a name already in the local Hugging
Face cache, offline; ``CrossEncoderScorer`` scores batches of pairs with raw logits and counts its
throughput. ``rerank_top`` / ``rerank_windows`` reorder the first ``top_n`` of a window by those
scores (the ``ce`` baseline of ``hybridrank evaluate``; the ``cross_encoder`` feature imports the
scorer lazily). torch and sentence-transformers are imported inside functions only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import ModelError
from ltr.cross_encoder.pairs import fetch_texts

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connector.retrieval.candidates import Candidate


def offline_env() -> None:
    """Hugging Face libraries never reach for the network (hubs are unreachable here), nor fork tokenizers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _looks_like_path(ref: str) -> bool:
    """A filesystem path rather than a hub-style name (``org/name``, which has one slash)."""
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1 or "\\" in ref or Path(ref).expanduser().exists()


def load_cross_encoder(path_or_name: str | Path, *, max_length: int | None = None) -> Any:
    """A ``sentence_transformers.CrossEncoder`` from a directory or an already-cached name, offline.

    ``ModelError`` names the path when it is missing, is not a model directory, or fails to load.
    """
    ref = str(path_or_name)
    path = Path(ref).expanduser()
    if _looks_like_path(ref) or path.exists():
        if not path.is_dir():
            raise ModelError(f"cross-encoder not found: {path} (expected a model directory)")
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a cross-encoder directory: no config.json "
                             "(train one with `hybridrank cross-encoder train`)")
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot load cross-encoder {str(path)!r}: corrupt config.json ({exc})") from exc
        if not isinstance(config, dict):
            raise ModelError(f"cannot load cross-encoder {str(path)!r}: corrupt config.json (not an object)")
        ref = str(path)
    offline_env()
    from sentence_transformers import CrossEncoder

    try:
        return CrossEncoder(ref, device="cpu", local_files_only=True, max_length=max_length)
    except Exception as exc:  # OSError, ValueError, safetensors/HF errors...
        raise ModelError(f"cannot load cross-encoder {ref!r}: {type(exc).__name__}: {exc}. Cross-encoders "
                         "load offline only: pass a local directory or a name already in the HF cache.") from exc


class CrossEncoderScorer:
    """Batched (query, document) scoring with raw logits; counts pairs and seconds for pairs/s."""

    def __init__(self, model: Any, *, batch_size: int = 32, name: str = "") -> None:
        self.model = model
        self.batch_size = batch_size
        self.name = name
        self.pairs_scored = 0
        self.seconds = 0.0

    @classmethod
    def load(cls, path_or_name: str | Path, *, batch_size: int = 32, max_length: int | None = None
             ) -> CrossEncoderScorer:
        return cls(load_cross_encoder(path_or_name, max_length=max_length), batch_size=batch_size,
                   name=str(path_or_name))

    @property
    def max_length(self) -> int:
        """Tokens of query + document the model reads (longer inputs are truncated)."""
        return int(getattr(self.model, "max_seq_length", None) or self.model.max_length)

    @property
    def pairs_per_s(self) -> float:
        return self.pairs_scored / self.seconds if self.seconds > 0 else float("nan")

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One float32 logit per text (higher = more relevant), in ``texts`` order."""
        return self.score_pairs([(query, t) for t in texts])

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        import torch

        start = time.perf_counter()
        scores = self.model.predict([list(p) for p in pairs], batch_size=self.batch_size,
                                    activation_fn=torch.nn.Identity(), convert_to_numpy=True,
                                    show_progress_bar=False)
        self.seconds += time.perf_counter() - start
        self.pairs_scored += len(pairs)
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


def rerank_top(scorer: CrossEncoderScorer, query: str, window: Sequence[Candidate], texts: Mapping[str, str],
               *, top_n: int) -> list[Candidate]:
    """The window with its first ``top_n`` reordered by the cross-encoder (ties keep window order);
    the rest keep their order below them. A candidate without text scores lowest in the top."""
    head, tail = list(window[:top_n]), list(window[top_n:])
    with_text = [c for c in head if c.doc_id in texts]
    scores = dict(zip((c.doc_id for c in with_text),
                      scorer.score(query, [texts[c.doc_id] for c in with_text]).tolist(), strict=True))
    order = sorted(range(len(head)), key=lambda i: (-scores.get(head[i].doc_id, float("-inf")), i))
    return [head[i] for i in order] + tail


def rerank_windows(scorer: CrossEncoderScorer, client: Elasticsearch, index: str, fields: Sequence[str],
                   queries: Mapping[str, str], windows: Mapping[str, Sequence[Candidate]], *, top_n: int,
                   on_query: Callable[[int], None] | None = None) -> dict[str, list[Candidate]]:
    """``{qid: window}`` with each query's top ``top_n`` reranked (texts fetched once per query)."""
    out: dict[str, list[Candidate]] = {}
    for qid, window in windows.items():
        head_ids = [c.doc_id for c in window[:top_n]]
        texts = fetch_texts(client, index, head_ids, fields) if head_ids else {}
        out[qid] = rerank_top(scorer, queries[qid], window, texts, top_n=top_n)
        if on_query is not None:
            on_query(1)
    return out


__all__ = ["CrossEncoderScorer", "load_cross_encoder", "offline_env", "rerank_top", "rerank_windows"]
