"""Each retriever leg's 1-based rank of the candidate; NaN when that leg did not find it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate

PREFIX = "rank_"


class LegRank:
    """``rank_<leg>`` for leg ``bm25`` or ``knn``."""

    def __init__(self, leg: str) -> None:
        self.leg = leg
        self.name = f"{PREFIX}{leg}"

    def params(self) -> dict[str, Any]:
        return {"leg": self.leg}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        rank = cand.leg_ranks.get(self.leg)
        return MISSING if rank is None else float(rank)

    def column(self, ctx: FeatureContext) -> np.ndarray:
        import numpy as np

        from features.leg_columns import leg_columns

        columns = leg_columns(ctx)
        if columns is not None and self.leg in columns.ranks:
            return columns.ranks[self.leg]
        return np.array([float(c.leg_ranks.get(self.leg, MISSING)) for c in ctx.candidates], dtype=np.float64)
