"""How clearly each leg's best candidate stands out in this query's window (a query-level feature).

``bm25_top_gap``: BM25 (best fields) of the window's best minus its second best, in units of the
window's standard deviation; ``dense_top_gap`` the same for the exact cosine. A large gap says the leg
is confident for this query, a small one that its top is a tie, so a tree can lean on one leg per
query. The same value for every candidate of the query; NaN with fewer than two present scores, 0
when the deviation is 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from features.base import MISSING, FeatureContext
from features.leg_zscore import LegFeature

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate

SUFFIX = "_top_gap"


def top_gap(scores: np.ndarray) -> float:
    """(best - second best) / std over the present values."""
    present = np.sort(scores[~np.isnan(scores)])
    if present.size < 2:
        return MISSING
    std = float(present.std())
    return 0.0 if std == 0.0 else float(present[-1] - present[-2]) / std


class LegTopGap(LegFeature):
    """``bm25_top_gap`` or ``dense_top_gap``."""

    suffix = SUFFIX

    def _gap(self, ctx: FeatureContext) -> float:
        key = f"top_gap:{self.leg}"
        if key not in ctx.cache:
            ctx.cache[key] = top_gap(self._base.column(ctx))
        gap: float = ctx.cache[key]
        return gap

    def column(self, ctx: FeatureContext) -> np.ndarray:
        return np.full(len(ctx.candidates), self._gap(ctx))

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        return self._gap(ctx)
