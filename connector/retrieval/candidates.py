"""The Candidate: what retrieval hands to every later stage (features, ranker, endpoint).

A candidate keeps each retriever leg's raw score and 1-based rank; a leg that did not find the
document has no entry (absent, never zero). Later stages read these and never re-query for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.retrieval.hit_ids import hit_id

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
    """One Candidate per distinct document over all legs' hit lists (in ES's ``hits.hits`` shape).

    It runs for every hit of every search (~200 per query), so each Candidate is built in one call.
    """
    merged: dict[str, Candidate] = {}
    for leg, hits in legs.items():
        for rank, hit in enumerate(hits, start=1):
            doc_id = hit_id(hit)
            score = float(hit["_score"])
            cand = merged.get(doc_id)
            if cand is None:
                merged[doc_id] = Candidate(doc_id, hit.get("_source") or {}, {leg: score}, {leg: rank}, 0.0,
                                           hit.get("_index", index))
                continue
            if not cand.source and hit.get("_source"):
                cand.source = hit["_source"]
            cand.leg_scores[leg] = score
            cand.leg_ranks[leg] = rank
    return merged
