"""A stand-in cross-encoder scorer for tests of what uses one (reranking, the feature), without a model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class LengthScorer:
    """Scores a text by its length (a real, deterministic function), recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        self.calls.append((query, list(texts)))
        return np.array([float(len(t)) for t in texts], dtype=np.float32)
