"""The fused scores of the window: RRF and linear (min-max) fusion, as ``connector.retrieval.fusion`` defines them.

Both depend on the whole window, so they are computed once per query with the very functions the
retrieval modes use (``FeatureContext.fused_scores``), or, for the whole window at once, on the leg
columns (``features.leg_columns``, the same values bit for bit); this feature only reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate

METHODS = ("rrf", "linear")
_NONE: dict[str, float] = {}  # a candidate without fused scores (read only)
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
        return ctx.fused_scores().get(cand.doc_id, _NONE).get(self.method, MISSING)

    def column(self, ctx: FeatureContext) -> np.ndarray:
        import numpy as np

        from features.leg_columns import fused_columns

        columns = fused_columns(ctx)
        if columns is not None:
            return columns[self.method]
        fused, method = ctx.fused_scores(), self.method
        return np.array([fused.get(c.doc_id, _NONE).get(method, MISSING) for c in ctx.candidates], dtype=np.float64)
