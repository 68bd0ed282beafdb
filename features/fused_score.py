"""The fused scores of the window: RRF and linear (min-max) fusion, as ``connector.fusion`` defines them.

Both depend on the whole window, so the pipeline computes them once per query (``FeatureContext.fused``)
with the very functions the retrieval modes use; this feature only reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext

if TYPE_CHECKING:
    from connector.candidates import Candidate
    from hybridrank.config import IndexConfig

METHODS = ("rrf", "linear")
PREFIX = "fused_"


class FusedScore:
    """``fused_rrf`` or ``fused_linear``."""

    def __init__(self, method: str) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown fusion {method!r}")
        self.method = method
        self.name = f"{PREFIX}{method}"

    def params(self) -> dict[str, Any]:
        return {"method": self.method}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        return ctx.fused.get(cand.doc_id, {}).get(self.method, MISSING)


def window_fusions(candidates: Iterable[Candidate], config: IndexConfig) -> dict[str, dict[str, float]]:
    """doc_id -> {method: fused score} over the window, computed on copies (inputs stay untouched)."""
    from connector.candidates import Candidate as Cand
    from connector.fusion import FUSIONS

    originals = list(candidates)
    out: dict[str, dict[str, float]] = {c.doc_id: {} for c in originals}
    for method in METHODS:
        copies = [Cand(doc_id=c.doc_id, leg_scores=dict(c.leg_scores), leg_ranks=dict(c.leg_ranks))
                  for c in originals]
        FUSIONS[method](copies, k=config.rrf_k, weight=config.linear_weight)
        for copy in copies:
            out[copy.doc_id][method] = float(copy.fused_score)
    return out
