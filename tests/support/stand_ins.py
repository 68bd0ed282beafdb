"""Stand-ins for the heavy parts of serving, for tests about what surrounds them: a model that sums
its features, an embedder that gives every query the same small vector."""

from __future__ import annotations

import numpy as np


class SumModel:
    """A "trained" model whose score is the sum of a row's features (missing counted as 0)."""

    model_id = "sum"

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return np.nansum(matrix, axis=1)


class ConstantEmbedder:
    """Every query embeds to ``[1, 0, ...]`` of ``dims`` dimensions."""

    def __init__(self, dims: int = 2) -> None:
        self.vector = np.zeros(dims, dtype=np.float32)
        self.vector[0] = 1.0

    def encode_query(self, text: str) -> np.ndarray:
        return self.vector
