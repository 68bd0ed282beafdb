"""Exact cosine similarity between the query vector and the document vector, for every candidate.

The round trip's named ``knn`` query is restricted to the candidate ids with full-precision
rescoring, so the score is exact (not the quantized HNSW score) even for documents only BM25 found.
ES reports cosine as ``(1 + cos) / 2``; the feature is ``cos`` itself. No vector: NaN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.base import DENSE_SCORE, MISSING, FeatureContext, SimpleFeature

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate


class DenseCosine(SimpleFeature):
    name = "dense_cosine"

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        score = ctx.exact_for(cand.doc_id).named.get(DENSE_SCORE)
        return MISSING if score is None else 2.0 * float(score) - 1.0

    def column(self, ctx: FeatureContext) -> np.ndarray:
        result: np.ndarray = 2.0 * ctx.named_column(DENSE_SCORE, MISSING) - 1.0
        return result
