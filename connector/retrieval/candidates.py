"""The Candidate: what retrieval hands to every later stage (features, ranker, endpoint).

A candidate keeps each retriever leg's raw score and 1-based rank; a leg that did not find the
document has no entry (absent, never zero). Later stages read these and never re-query for them.
Where the legs carried the features' named clauses (``features.exact_scoring``), it also keeps its exact
scores (``exact``) and the clause set they are of (``exact_by``), so the features need no search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connector.indexing.mapping import ID_FIELD
from connector.retrieval.hit_ids import ids_of

if TYPE_CHECKING:
    from features.base import ExactScores
    from features.exact_scoring import ExactScoring

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
    exact: ExactScores | None = None
    exact_by: str = ""  # the signature of the clause set ``exact`` holds (``features.exact_scoring``)

    def found_by(self, leg: str) -> bool:
        return leg in self.leg_ranks


def merge_legs(index: str, legs: dict[str, list[dict[str, Any]]],
               scoring: ExactScoring | None = None) -> dict[str, Candidate]:
    """One Candidate per distinct document over all legs' hit lists (in ES's ``hits.hits`` shape);
    with ``scoring`` (the clause set every leg carried), each keeps its exact scores from the first leg.

    It runs for every hit of every search (~200 per query), so each Candidate is built in one call and
    the ids of a leg's hits are read in one (``hit_ids.ids_of``). A hit without an id raises KeyError.
    """
    merged: dict[str, Candidate] = {}
    signature = scoring.signature if scoring is not None else ""
    parse = scoring.parse if scoring is not None else None
    for leg, hits in legs.items():
        for rank, (hit, named_id) in enumerate(zip(hits, ids_of(hits), strict=True), start=1):
            if named_id is None:
                raise KeyError(f"hit without _id or {ID_FIELD}")
            doc_id = str(named_id)
            score = float(hit["_score"])
            cand = merged.get(doc_id)
            if cand is None:
                merged[doc_id] = Candidate(doc_id, hit.get("_source") or {}, {leg: score}, {leg: rank}, 0.0,
                                           hit.get("_index", index), parse(hit) if parse is not None else None,
                                           signature)
                continue
            if not cand.source and hit.get("_source"):
                cand.source = hit["_source"]
            cand.leg_scores[leg] = score
            cand.leg_ranks[leg] = rank
    return merged
