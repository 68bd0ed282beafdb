"""Click-through rate of (query, document) from the click statistics, when there are any.

The feedback loop maintains the statistics (``features.base.ClickStats``); without them, or for a
pair never shown, the value is NaN, so the model can tell "no evidence" from "never clicked".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.base import MISSING, FeatureContext, SimpleFeature

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate


class ClickThroughRate(SimpleFeature):
    name = "ctr"

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        if ctx.click_stats is None:
            return MISSING
        rate = ctx.click_stats.ctr(ctx.query_text, cand.doc_id)
        return MISSING if rate is None else float(rate)
