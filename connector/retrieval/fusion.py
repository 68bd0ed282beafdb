"""Fusion of the retriever legs into one ordered candidate window.

One function per method; ``FUSIONS`` maps a mode name to it. Each takes the merged candidates
(with per-leg scores and ranks) and writes ``fused_score``; ordering is done by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from connector.retrieval.candidates import DENSE, LEGS, LEXICAL, Candidate

if TYPE_CHECKING:
    from hybridrank.config import IndexConfig


def rrf_score(leg_ranks: Mapping[str, int], k: int = 60) -> float:
    """Reciprocal rank fusion (Cormack et al. 2009): sum over legs of 1 / (k + rank)."""
    return sum([1.0 / (k + rank) for rank in leg_ranks.values()])  # a list: no generator per candidate


def rrf(candidates: Iterable[Candidate], *, k: int = 60, **_: float) -> None:
    """Write each candidate's ``rrf_score``."""
    for cand in candidates:
        cand.fused_score = rrf_score(cand.leg_ranks, k)


def linear(candidates: Iterable[Candidate], *, weight: float = 0.5, **_: float) -> None:
    """Write each candidate's ``linear_scores``."""
    cands = list(candidates)
    for cand, score in zip(cands, linear_scores(cands, weight), strict=True):
        cand.fused_score = score


def linear_scores(cands: Sequence[Candidate], weight: float = 0.5) -> list[float]:
    """Min-max normalise each leg over the window, then ``(1 - weight) * bm25 + weight * knn``.

    A document a leg did not find gets that leg's minimum (normalised 0): it scored below
    everything the leg returned.
    """
    norm: dict[str, tuple[float, float]] = {}
    for leg in LEGS:
        scores = [c.leg_scores[leg] for c in cands if leg in c.leg_scores]
        if scores:
            norm[leg] = (min(scores), max(scores))
    weights = {LEXICAL: 1.0 - weight, DENSE: weight}
    out: list[float] = []
    for cand in cands:
        total = 0.0
        for leg, (low, high) in norm.items():
            if leg in cand.leg_scores:
                span = high - low
                total += weights[leg] * ((cand.leg_scores[leg] - low) / span if span > 0 else 1.0)
        out.append(total)
    return out


def only(leg: str) -> Callable[..., None]:
    """A single leg's own score (BM25 or kNN alone)."""

    def fuse(candidates: Iterable[Candidate], **_: float) -> None:
        for cand in candidates:
            cand.fused_score = cand.leg_scores.get(leg, float("-inf"))

    fuse.__name__ = f"only_{leg}"
    return fuse


FUSIONS: dict[str, Callable[..., None]] = {
    "bm25": only(LEXICAL),
    "knn": only(DENSE),
    "rrf": rrf,
    "linear": linear,
}


def ordered(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Best first; ties broken by doc id so runs are reproducible."""
    return sorted(candidates, key=lambda c: (-c.fused_score, c.doc_id))


def window_fusions(candidates: Iterable[Candidate], config: IndexConfig) -> dict[str, dict[str, float]]:
    """doc_id -> {method: fused score} over the window, by the functions the retrieval modes use
    (the candidates are not touched)."""
    cands = list(candidates)
    linear = linear_scores(cands, config.linear_weight)
    return {c.doc_id: {"rrf": rrf_score(c.leg_ranks, config.rrf_k), "linear": score}
            for c, score in zip(cands, linear, strict=True)}
