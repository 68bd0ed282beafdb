"""IDF of the query's terms, from the index's own term statistics: ``query_idf_sum``, ``_max``, ``_min``.

A query-level feature (the same for every candidate): how rare the query's terms are tells how much
its BM25 scores can be trusted (a query of common words scores many documents alike). The statistics
come from one ``_mtermvectors`` request per batch of queries (``features.pipeline``), an artificial
document holding the query text in every text field, so the index's analyzer (stop words, stemming)
decides the terms. Per term, the IDF is Lucene's BM25 ``ln(1 + (N - df + 0.5) / (df + 0.5))`` in the
text field with the most documents. A query without indexed terms (or no statistics): NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from features.base import MISSING, FeatureContext

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate

STATS = ("sum", "max", "min")
PREFIX = "query_idf_"


def term_stats_doc(index: str, query_text: str, text_fields: Sequence[str]) -> dict[str, Any]:
    """One ``_mtermvectors`` entry: the query as an artificial document, with term and field statistics."""
    return {"_index": index, "doc": {f: query_text for f in text_fields}, "fields": list(text_fields),
            "term_statistics": True, "field_statistics": True, "positions": False, "offsets": False,
            "payloads": False}


def bm25_idf(doc_freq: int, doc_count: int) -> float:
    return math.log(1.0 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


def idf_from_term_vectors(entry: dict[str, Any]) -> tuple[float, ...]:
    """The IDF of each distinct analysed query term (sorted by term) from one ``_mtermvectors`` doc."""
    vectors = entry.get("term_vectors") or {}
    best: dict[str, Any] | None = None
    for field_vectors in vectors.values():
        count = int((field_vectors.get("field_statistics") or {}).get("doc_count", 0))
        if best is None or count > int((best.get("field_statistics") or {}).get("doc_count", 0)):
            best = field_vectors
    if best is None:
        return ()
    count = int((best.get("field_statistics") or {}).get("doc_count", 0))
    if count <= 0:
        return ()
    terms = best.get("terms") or {}
    return tuple(bm25_idf(int(terms[t].get("doc_freq", 0)), count) for t in sorted(terms))


def idf_stat(idf: Sequence[float] | None, stat: str) -> float:
    if not idf:
        return MISSING
    if stat == "sum":
        return float(sum(idf))
    return float(max(idf)) if stat == "max" else float(min(idf))


class QueryIdf:
    """``query_idf_sum``, ``query_idf_max`` or ``query_idf_min``."""

    needs_term_stats: ClassVar[bool] = True

    def __init__(self, stat: str) -> None:
        if stat not in STATS:
            raise ValueError(f"unknown statistic {stat!r}")
        self.stat = stat
        self.name = f"{PREFIX}{stat}"

    def params(self) -> dict[str, Any]:
        return {"stat": self.stat, "idf": "bm25"}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        return idf_stat(ctx.term_idf, self.stat)

    def column(self, ctx: FeatureContext) -> np.ndarray:
        return np.full(len(ctx.candidates), idf_stat(ctx.term_idf, self.stat))
