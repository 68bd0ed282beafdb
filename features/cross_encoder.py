"""Cross-encoder score of the top of the window: the model reads the query and the document together.

Optional and not in the default set (list ``cross_encoder`` in the index's ``features``): it costs a
transformer forward pass per scored candidate. Only the first ``top_n`` candidates of the window (in
the window's order) are scored, once per query in one batch; the others are NaN, as are all
candidates when no model is configured (``cross_encoder_model`` empty) or a document's text is
missing. The text is the index's ``embed_fields`` joined, read from the ``_source`` the pipeline's
exact-scores search returns (``source_fields`` below asks for those fields).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from features.base import MISSING, FeatureContext

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate
    from ltr.cross_encoder.scoring import CrossEncoderScorer

NAME = "cross_encoder"


@functools.lru_cache(maxsize=4)
def _scorer(model: str) -> CrossEncoderScorer:
    """One loaded model per path, shared by every query and pipeline of the process."""
    from ltr.cross_encoder.scoring import CrossEncoderScorer

    return CrossEncoderScorer.load(model)


class CrossEncoderScore:
    """``cross_encoder``: the cross-encoder's logit for (query, document text) on the window's top N."""

    name = NAME

    def __init__(self, model: str, *, top_n: int = 20, fields: Sequence[str] = ("title", "text"),
                 scorer: CrossEncoderScorer | None = None) -> None:
        self.model = model
        self.top_n = top_n
        self.fields = tuple(fields)
        self.source_fields: tuple[str, ...] = self.fields if model or scorer is not None else ()
        self._scorer = scorer

    def params(self) -> dict[str, Any]:
        return {"model": self.model, "top_n": self.top_n, "fields": list(self.fields)}

    def scorer(self) -> CrossEncoderScorer | None:
        if self._scorer is None and self.model:
            self._scorer = _scorer(self.model)
        return self._scorer

    def _window_scores(self, ctx: FeatureContext) -> dict[str, float]:
        key = f"values:{NAME}"
        if key not in ctx.cache:
            ctx.cache[key] = self._score_top(ctx)
        scores: dict[str, float] = ctx.cache[key]
        return scores

    def _score_top(self, ctx: FeatureContext) -> dict[str, float]:
        from ltr.cross_encoder.pairs import doc_text

        scorer = self.scorer()
        if scorer is None:
            return {}
        texts: dict[str, str] = {}
        for cand in list(ctx.candidates)[: self.top_n]:
            source = ctx.exact_for(cand.doc_id).source or cand.source
            text = doc_text(source, self.fields)
            if text and cand.doc_id not in texts:
                texts[cand.doc_id] = text
        if not texts:
            return {}
        values = scorer.score(ctx.query_text, list(texts.values()))
        return {doc_id: float(v) for doc_id, v in zip(texts, values.tolist(), strict=True)}

    def value(self, ctx: FeatureContext, cand: Candidate) -> float:
        score = self._window_scores(ctx).get(cand.doc_id)
        return MISSING if score is None or math.isnan(score) else score
