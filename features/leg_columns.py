"""The window's retrieval-leg scores and ranks as float64 columns, read from the candidates once per query.

The leg features (``rank_<leg>``, ``found_by_both``, ``fused_rrf``, ``fused_linear``) run on every
reranked search over ~170 candidates. Reading each candidate's ``leg_scores``/``leg_ranks`` once for all
of them and computing on columns gives the per-candidate code's values bit for bit (the same IEEE
operations in the same order: ``tests/unit/features/test_columns.py``) for a fraction of its CPU.
NaN marks a leg that did not find the candidate.

A window the columns cannot mirror exactly (a candidate with a leg other than ``LEGS``, or a NaN leg
score) gives None, and the features then take their per-candidate path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from connector.retrieval.candidates import DENSE, LEGS, LEXICAL
from features.base import MISSING, FeatureContext

_KEY = "legs:columns"
_FUSED_KEY = "legs:fused"


@dataclass(frozen=True, slots=True)
class LegColumns:
    """Per leg of ``LEGS``: the raw score and the 1-based rank of every candidate (NaN: not found). Read only."""

    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]


def leg_columns(ctx: FeatureContext) -> LegColumns | None:
    """The window's leg columns (cached in ``ctx.cache``), or None when they cannot mirror the candidates."""
    if _KEY in ctx.cache:
        cached: LegColumns | None = ctx.cache[_KEY]
        return cached
    rank_maps = [c.leg_ranks for c in ctx.candidates]
    score_maps = [c.leg_scores for c in ctx.candidates]
    ranks = {leg: np.array([r.get(leg, MISSING) for r in rank_maps], dtype=np.float64) for leg in LEGS}
    scores = {leg: np.array([s.get(leg, MISSING) for s in score_maps], dtype=np.float64) for leg in LEGS}
    # every entry of the maps is in a column as a number (no other leg, no NaN score): else the
    # per-candidate code reads something the columns do not hold
    exact = (_present(ranks) == sum(map(len, rank_maps)) and _present(scores) == sum(map(len, score_maps)))
    columns = LegColumns(scores, ranks) if exact else None
    ctx.cache[_KEY] = columns
    return columns


def fused_columns(ctx: FeatureContext) -> dict[str, np.ndarray] | None:
    """``{"rrf": column, "linear": column}``: ``connector.retrieval.fusion``'s ``rrf_score`` and
    ``linear_scores`` on columns (cached), or None when the leg columns cannot mirror the window."""
    if _FUSED_KEY in ctx.cache:
        cached: dict[str, np.ndarray] | None = ctx.cache[_FUSED_KEY]
        return cached
    columns = leg_columns(ctx)
    fused = None if columns is None else {
        "rrf": _rrf(columns.ranks, ctx.index_config.rrf_k),
        "linear": _linear(columns.scores, ctx.index_config.linear_weight, len(ctx.candidates)),
    }
    ctx.cache[_FUSED_KEY] = fused
    return fused


def _present(columns: dict[str, np.ndarray]) -> int:
    return sum(int(np.count_nonzero(~np.isnan(col))) for col in columns.values())


def _rrf(ranks: dict[str, np.ndarray], k: int) -> np.ndarray:
    """``rrf_score``: 0 + 1/(k + rank) per leg that found the candidate (addition commutes bit for bit)."""
    total = np.zeros(len(ranks[LEXICAL]), dtype=np.float64)
    for leg in LEGS:
        rank = ranks[leg]
        total = total + np.where(np.isnan(rank), 0.0, 1.0 / (k + rank))
    return total


def _linear(scores: dict[str, np.ndarray], weight: float, size: int) -> np.ndarray:
    """``linear_scores``: per leg with scores, its weight times the min-max normalised score, added to 0.0
    leg after leg as the per-candidate loop does; the minimum and maximum taken over Python floats as there."""
    weights = {LEXICAL: 1.0 - weight, DENSE: weight}
    total = np.zeros(size, dtype=np.float64)
    for leg in LEGS:
        column = scores[leg]
        missing = np.isnan(column)
        present: list[float] = column[~missing].tolist()
        if not present:
            continue
        low, high = min(present), max(present)
        span = high - low
        term = weights[leg] * ((column - low) / span) if span > 0 else np.full(size, weights[leg] * 1.0)
        total = np.where(missing, total, total + term)
    return total
