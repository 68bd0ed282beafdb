"""Features of the query alone (the same for every candidate): its length in terms."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from features.base import FeatureContext, SimpleFeature

if TYPE_CHECKING:
    import numpy as np

    from connector.retrieval.candidates import Candidate

_TERM = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str) -> list[str]:
    return _TERM.findall(text.lower())


class QueryLength(SimpleFeature):
    name = "query_length"

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        if self.name not in ctx.cache:
            ctx.cache[self.name] = float(len(query_terms(ctx.query_text)))
        length: float = ctx.cache[self.name]
        return length

    def column(self, ctx: FeatureContext) -> np.ndarray:
        import numpy as np

        return np.full(len(ctx.candidates), float(len(query_terms(ctx.query_text))))
