"""Proximity: BM25 of the query as a phrase with slop, one named clause in the exact-scores search.

``bm25_phrase``: the score of a ``multi_match`` of type ``phrase`` (slop ``SLOP``) over the text fields,
i.e. how well the query's terms appear near each other in the document; 0 when they never come close
enough, NaN when the document was not found. ``bm25_phrase_ratio``: that over BM25 best fields (how much
of the lexical score comes with proximity; 0 when BM25 is 0). The clause rides in the same round trip
as the per-field BM25 scores (``features.pipeline.exact_scores_body``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from features.base import MISSING, FeatureContext, SimpleFeature
from features.bm25_best_fields import BM25BestFields

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate

PHRASE_KEY = "phrase"
SLOP = 8


def phrase_clauses(query_text: str, text_fields: Sequence[str]) -> list[dict[str, Any]]:
    return [{"multi_match": {"query": query_text, "fields": list(text_fields), "type": "phrase", "slop": SLOP,
                             "_name": PHRASE_KEY}}]


class BM25Phrase(SimpleFeature):
    name = "bm25_phrase"
    exact_clauses = staticmethod(phrase_clauses)

    def params(self) -> dict[str, Any]:
        return {"slop": SLOP}

    def column(self, ctx: FeatureContext) -> np.ndarray:
        return ctx.named_column(PHRASE_KEY, 0.0)

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        exact = ctx.exact_for(cand.doc_id)
        return float(exact.named.get(PHRASE_KEY, 0.0)) if exact.found else MISSING


class BM25PhraseRatio(SimpleFeature):
    name = "bm25_phrase_ratio"
    exact_clauses = staticmethod(phrase_clauses)
    _base = BM25BestFields()

    def params(self) -> dict[str, Any]:
        return {"slop": SLOP}

    def column(self, ctx: FeatureContext) -> np.ndarray:
        phrase = ctx.named_column(PHRASE_KEY, 0.0)
        bm25 = self._base.column(ctx)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bm25 > 0, phrase / np.where(bm25 > 0, bm25, 1.0), 0.0)
        result: np.ndarray = np.where(np.isnan(phrase) | np.isnan(bm25), MISSING, ratio)
        return result

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        phrase = BM25Phrase().value(ctx, cand)
        bm25 = self._base.value(ctx, cand)
        if np.isnan(phrase) or np.isnan(bm25):
            return MISSING
        return phrase / bm25 if bm25 > 0 else 0.0
