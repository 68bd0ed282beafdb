"""How many of the query's terms a document contains, in any text field, as Elasticsearch analyses them.

Each distinct query term is one named ``multi_match`` clause in the exact-scores search (the same
round trip as the BM25 scores), so stemming and stop words are the index's own: a stop word never
matches and "cells" matches "cell" exactly when the field's analyzer says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from features.base import MISSING, FeatureContext, SimpleFeature
from features.query_features import query_terms

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate

TERM_PREFIX = "term:"
MAX_TERMS = 32  # longer queries count their first 32 distinct terms


def distinct_terms(query_text: str) -> list[str]:
    return list(dict.fromkeys(query_terms(query_text)))[:MAX_TERMS]


def term_key(term: str) -> str:
    return f"{TERM_PREFIX}{term}"


def _matched(ctx: FeatureContext, cand: Candidate) -> int | None:
    exact = ctx.exact_for(cand.doc_id)
    if not exact.found:
        return None
    return sum(1 for key in exact.named if key.startswith(TERM_PREFIX))


class MatchedTerms(SimpleFeature):
    """The number of distinct query terms the document matches."""

    name = "matched_terms"
    needs_term_matches: ClassVar[bool] = True

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        matched = _matched(ctx, cand)
        return MISSING if matched is None else float(matched)


class MatchedTermsRatio(SimpleFeature):
    """Matched distinct terms over the query's distinct terms (NaN for a query without terms)."""

    name = "matched_terms_ratio"
    needs_term_matches: ClassVar[bool] = True

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        total = len(distinct_terms(ctx.query_text))
        matched = _matched(ctx, cand)
        return MISSING if matched is None or total == 0 else matched / total
