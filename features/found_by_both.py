"""1.0 when both the BM25 and the kNN leg retrieved the candidate, else 0.0 (never missing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connector.retrieval.candidates import LEGS
from features.base import FeatureContext, SimpleFeature

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate


class FoundByBoth(SimpleFeature):
    name = "found_by_both"

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        return 1.0 if all(cand.found_by(leg) for leg in LEGS) else 0.0

    def column(self, ctx: FeatureContext) -> np.ndarray:
        import numpy as np

        from features.leg_columns import leg_columns

        columns = leg_columns(ctx)
        if columns is not None:
            found = np.ones(len(ctx.candidates), dtype=bool)
            for leg in LEGS:
                found &= ~np.isnan(columns.ranks[leg])
            return np.where(found, 1.0, 0.0)
        every = frozenset(LEGS)
        return np.array([1.0 if c.leg_ranks.keys() >= every else 0.0 for c in ctx.candidates], dtype=np.float64)
