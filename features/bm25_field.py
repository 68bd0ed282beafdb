"""Exact BM25 of the query against one text field, for every candidate (kNN-only ones included).

Read from the named ``match`` query of the feature round trip. A document that was returned but did
not match the field scores a true 0; a document not returned at all is missing (NaN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext, bm25_key

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate

PREFIX = "bm25_"


class BM25Field:
    """``bm25_<field>``: the unboosted BM25 score of the query on ``field``."""

    def __init__(self, field_name: str) -> None:
        self.field_name = field_name
        self.name = f"{PREFIX}{field_name}"

    def params(self) -> dict[str, Any]:
        return {"field": self.field_name}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        exact = ctx.exact_for(cand.doc_id)
        if not exact.found:
            return MISSING
        return float(exact.named.get(bm25_key(self.field_name), 0.0))

    def column(self, ctx: FeatureContext) -> np.ndarray:
        return ctx.named_column(bm25_key(self.field_name), 0.0)
