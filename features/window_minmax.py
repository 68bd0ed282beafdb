"""An exact score min-max normalised over the query's window: ``minmax_<score>``, 0 at its lowest, 1 at its best.

The same normalisation linear fusion applies to each leg (``connector.retrieval.fusion.linear_scores``),
applied to an exact score of every candidate: ``minmax_bm25_best_fields``, ``minmax_dense_cosine`` and
per field ``minmax_bm25_<field>``. Raw BM25 grows with the query's length and its terms' IDF, and cosine
ranges differ between collections and models; a window-relative score in [0, 1] means the same on any
index, so a model trained on one collection reads it the same way on another (docs/ltr.md, transfer).
A window whose present scores are all equal gives 1.0 (as linear fusion does); a missing score stays NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from features.base import MISSING, FeatureContext, WindowColumnFeature

if TYPE_CHECKING:
    from features.bm25_best_fields import BM25BestFields
    from features.bm25_field import BM25Field
    from features.dense_similarity import DenseCosine

PREFIX = "minmax_"


def minmax(scores: np.ndarray) -> np.ndarray:
    """(s - min) / (max - min) over the present (non-NaN) values; NaN stays NaN, a zero span gives 1."""
    present = scores[~np.isnan(scores)]
    if present.size == 0:
        return np.full(scores.shape, MISSING)
    low, high = float(present.min()), float(present.max())
    if high == low:
        return np.where(np.isnan(scores), MISSING, 1.0)
    result: np.ndarray = (scores - low) / (high - low)
    return result


class WindowMinMax(WindowColumnFeature):
    """``minmax_<base>`` for an exact-score feature ``base`` (its column over the window, normalised)."""

    def __init__(self, base: BM25BestFields | BM25Field | DenseCosine) -> None:
        self._base = base
        self.name = f"{PREFIX}{base.name}"
        self.cache_key = f"minmax:{base.name}"

    def params(self) -> dict[str, Any]:
        return {"base": self._base.name, **self._base.params()}

    def compute(self, ctx: FeatureContext) -> np.ndarray:
        return minmax(self._base.column(ctx))
