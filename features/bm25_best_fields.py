"""The BM25 leg's own score, recomputed exactly for every candidate from the per-field scores.

``multi_match`` best_fields with tie_breaker t scores ``max_i(b_i s_i) + t * sum_{j != argmax} b_j s_j``
(boost b, per-field BM25 s). Recomputing it gives the lexical score of documents only kNN found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext, SimpleFeature, bm25_key

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate

TIE_BREAKER = 0.5  # as connector.retrieval.queries.bm25_clause


class BM25BestFields(SimpleFeature):
    name = "bm25_best_fields"

    def params(self) -> dict[str, Any]:
        return {"tie_breaker": TIE_BREAKER}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        exact = ctx.exact_for(cand.doc_id)
        if not exact.found:
            return MISSING
        scores = [boost * float(exact.named.get(bm25_key(f), 0.0)) for f, boost in ctx.index_config.text_fields.items()]
        best = max(scores)
        return best + TIE_BREAKER * (sum(scores) - best)

    def column(self, ctx: FeatureContext) -> np.ndarray:
        """``value`` for the window: the same operations in the same order, elementwise."""
        import numpy as np

        scores = [boost * ctx.named_column(bm25_key(f), 0.0) for f, boost in ctx.index_config.text_fields.items()]
        best = scores[0].copy()
        total = 0.0 + scores[0]  # Python's sum() starts from 0
        for s in scores[1:]:
            best = np.where(s > best, s, best)  # max() keeps the first of equal values
            total = total + s
        result: np.ndarray = best + TIE_BREAKER * (total - best)
        return result
