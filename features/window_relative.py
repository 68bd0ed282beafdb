"""Exact scores relative to the best in the query's window: scale-free evidence across queries.

Raw BM25 depends on the query (its length, its terms' IDF), so a tree learns better from "how close
to this query's best document" than from the raw score. ``bm25_best_fields_ratio``: BM25 (best
fields) divided by the window's maximum (0 when nothing matched). ``dense_cosine_gap``: cosine minus
the window's highest cosine. Missing base score: NaN.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from features.base import MISSING, FeatureContext, SimpleFeature
from features.bm25_best_fields import BM25BestFields
from features.dense_similarity import DenseCosine

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate


def _window_values(ctx: FeatureContext, base: SimpleFeature) -> dict[str, float]:
    """doc_id -> the base feature's value, computed once per query and shared through ``ctx.cache``."""
    key = f"values:{base.name}"
    if key not in ctx.cache:
        ctx.cache[key] = {c.doc_id: base.value(ctx, c) for c in ctx.candidates}
    values: dict[str, float] = ctx.cache[key]
    return values


def _window_max(ctx: FeatureContext, base: SimpleFeature) -> float:
    key = f"max:{base.name}"
    if key not in ctx.cache:
        present = [v for v in _window_values(ctx, base).values() if not math.isnan(v)]
        ctx.cache[key] = max(present) if present else MISSING
    best: float = ctx.cache[key]
    return best


def _value(ctx: FeatureContext, base: SimpleFeature, cand: Candidate) -> float:
    cached = _window_values(ctx, base).get(cand.doc_id)
    return base.value(ctx, cand) if cached is None else cached


def _best(column: np.ndarray) -> float:
    """``_window_max`` of a whole column: the largest present value, NaN if none."""
    import numpy as np

    present: list[float] = column[~np.isnan(column)].tolist()  # Python floats, as _window_max compares them
    return max(present) if present else MISSING


class BM25Ratio(SimpleFeature):
    name = "bm25_best_fields_ratio"
    _base = BM25BestFields()

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        score = _value(ctx, self._base, cand)
        best = _window_max(ctx, self._base)
        if math.isnan(score) or math.isnan(best):
            return MISSING
        return score / best if best > 0 else 0.0

    def column(self, ctx: FeatureContext) -> np.ndarray:
        import numpy as np

        scores = self._base.column(ctx)
        best = _best(scores)
        if math.isnan(best):
            return np.full(len(scores), MISSING)
        ratio = scores / best if best > 0 else np.zeros(len(scores))
        result: np.ndarray = np.where(np.isnan(scores), MISSING, ratio)
        return result


class DenseGap(SimpleFeature):
    name = "dense_cosine_gap"
    _base = DenseCosine()

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        score = _value(ctx, self._base, cand)
        best = _window_max(ctx, self._base)
        return MISSING if math.isnan(score) or math.isnan(best) else score - best

    def column(self, ctx: FeatureContext) -> np.ndarray:
        scores = self._base.column(ctx)
        result: np.ndarray = scores - _best(scores)  # NaN in either stays NaN
        return result
