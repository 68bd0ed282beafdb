"""The Candidate: what retrieval hands to every later stage (features, ranker, endpoint).

A candidate keeps each retriever leg's raw score and 1-based rank; a leg that did not find the
document has no entry (absent, never zero). Later stages read these and never re-query for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.hit_ids import hit_id

LEXICAL = "bm25"
DENSE = "knn"
LEGS = (LEXICAL, DENSE)


@dataclass(slots=True)
class Candidate:
    doc_id: str
    source: dict[str, Any] = field(default_factory=dict)
    leg_scores: dict[str, float] = field(default_factory=dict)
    leg_ranks: dict[str, int] = field(default_factory=dict)
    fused_score: float = 0.0
    index: str = ""

    def found_by(self, leg: str) -> bool:
        return leg in self.leg_ranks


def merge_legs(index: str, legs: dict[str, list[dict[str, Any]]]) -> dict[str, Candidate]:
    """One Candidate per distinct document over all legs' hit lists (in ES's ``hits.hits`` shape)."""
    merged: dict[str, Candidate] = {}
    for leg, hits in legs.items():
        for rank, hit in enumerate(hits, start=1):
            doc_id = hit_id(hit)
            cand = merged.get(doc_id)
            if cand is None:
                cand = merged[doc_id] = Candidate(doc_id=doc_id, index=hit.get("_index", index))
            if hit.get("_source") and not cand.source:
                cand.source = hit["_source"]
            cand.leg_scores[leg] = float(hit["_score"])
            cand.leg_ranks[leg] = rank
    return merged
