"""Each leg's exact score as a z-score over the query's window: scale-free across queries and collections.

``bm25_zscore`` is BM25 (best fields) minus the window's mean, over the window's standard deviation;
``dense_zscore`` the same for the exact cosine. Raw BM25 grows with the query's length and its terms'
IDF, and cosine ranges differ between collections, so a model trained on one collection reads "how far
above this query's typical candidate", which means the same everywhere. Missing score: NaN; a window
whose scores are all equal (deviation 0): 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from features.base import MISSING, FeatureContext, WindowColumnFeature
from features.bm25_best_fields import BM25BestFields
from features.dense_similarity import DenseCosine

LEGS: dict[str, BM25BestFields | DenseCosine] = {"bm25": BM25BestFields(), "dense": DenseCosine()}
SUFFIX = "_zscore"


def zscores(scores: np.ndarray) -> np.ndarray:
    """(s - mean) / std over the present (non-NaN) values; NaN stays NaN, a zero deviation gives 0."""
    present = scores[~np.isnan(scores)]
    if present.size == 0:
        return np.full(scores.shape, MISSING)
    mean = float(present.mean())
    std = float(present.std())
    if std == 0.0:
        return np.where(np.isnan(scores), MISSING, 0.0)
    result: np.ndarray = (scores - mean) / std
    return result


class LegFeature:
    """A feature of one leg's exact score column: named ``<leg><suffix>``."""

    suffix: ClassVar[str] = ""

    def __init__(self, leg: str) -> None:
        if leg not in LEGS:
            raise ValueError(f"unknown leg {leg!r}")
        self.leg = leg
        self.name = f"{leg}{self.suffix}"
        self._base = LEGS[leg]

    def params(self) -> dict[str, Any]:
        return {"leg": self.leg}


class LegZScore(LegFeature, WindowColumnFeature):
    """``bm25_zscore`` or ``dense_zscore``."""

    suffix = SUFFIX

    def __init__(self, leg: str) -> None:
        super().__init__(leg)
        self.cache_key = f"zscore:{leg}"

    def compute(self, ctx: FeatureContext) -> np.ndarray:
        return zscores(self._base.column(ctx))
