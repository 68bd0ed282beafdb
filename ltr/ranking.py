"""Live reranking: retrieve the window, compute the features (the logging code path), score, reorder.

The rerank pool is every candidate either leg found (``ltr.training.feature_log.window_candidates``);
the result keeps each candidate's leg scores and ranks, and carries the feature matrix and the
model id so the endpoint can log an impression with its feature snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from features.base import as_utc
from features.pipeline import FeaturePipeline, FeatureRequest
from ltr.training.contract import check_contract
from ltr.training.feature_log import retrieve_requests

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate
    from connector.retrieval.retriever import Retriever
    from features.base import ClickStats
    from hybridrank.config import Settings
    from ltr.training.model import RankingModel


@dataclass
class RerankResult:
    candidates: list[Candidate]  # best first
    scores: np.ndarray  # model score per candidate, same order
    features: np.ndarray  # rows in the same order, columns = feature_names
    feature_names: list[str]
    model_id: str
    request_time: datetime


class Reranker:
    """A retriever + the feature pipeline + a model whose contract matches the pipeline."""

    def __init__(self, retriever: Retriever, pipeline: FeaturePipeline, model: RankingModel) -> None:
        check_contract(model.contract, pipeline)
        self.retriever = retriever
        self.pipeline = pipeline
        self.model = model

    def rerank(
        self,
        query_text: str,
        *,
        request_time: datetime,
        filters: Sequence[dict[str, Any]] = (),
        window: int | None = None,
        source: bool | Sequence[str] = False,
    ) -> RerankResult:
        return self.rerank_many([query_text], request_time=request_time, filters=filters, window=window,
                                source=source)[0]

    def rerank_many(
        self,
        query_texts: Sequence[str],
        *,
        request_time: datetime,
        filters: Sequence[dict[str, Any]] = (),
        window: int | None = None,
        source: bool | Sequence[str] = False,
    ) -> list[RerankResult]:
        """Rerank several queries with one ``_msearch`` for the legs and one for the features."""
        request_time = as_utc(request_time)
        requests = retrieve_requests(self.retriever, query_texts, request_time=request_time, window=window,
                                     filters=filters, source=source)
        matrices = self.pipeline.compute_many(self.retriever.client, self.retriever.index, requests)
        return [self._order(req, matrix) for req, matrix in zip(requests, matrices, strict=True)]

    def _order(self, request: FeatureRequest, matrix: np.ndarray) -> RerankResult:
        scores = self.model.score(matrix)
        cands = list(request.candidates)
        order = sorted(range(len(cands)), key=lambda i: (-float(scores[i]), cands[i].doc_id))
        reordered = [cands[i] for i in order]
        for cand, i in zip(reordered, order, strict=True):
            cand.fused_score = float(scores[i])
        return RerankResult(reordered, scores[order], matrix[order], self.pipeline.names, self.model.model_id,
                            request.request_time)


def rerank_windows(
    reranker: Reranker,
    queries: Mapping[str, str],
    *,
    request_time: datetime,
    window: int | None = None,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, list[Candidate]]:
    """``{qid: reranked window}`` for a split, ready for ``ltr.evaluation.metrics.run_from_windows``."""
    out: dict[str, list[Candidate]] = {}
    items = list(queries.items())
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        searchable = [(qid, text) for qid, text in batch if text.strip()]
        results = reranker.rerank_many([t for _, t in searchable], request_time=request_time, window=window) \
            if searchable else []
        for (qid, _), result in zip(searchable, results, strict=True):
            out[qid] = result.candidates
        for qid, text in batch:
            if not text.strip():
                out[qid] = []
        if on_batch is not None:
            on_batch(len(batch))
    return out


def load_reranker(
    settings: Settings,
    retriever: Retriever,
    model_ref: str,
    *,
    variant: str = "default",
    click_stats: ClickStats | None = None,
) -> Reranker:
    """The reranker for ``retriever``'s index: model from a path, a model id, or ``serving``."""
    from ltr.training.model import RankingModel
    from ltr.training.registry import ModelRegistry

    pipeline = FeaturePipeline.from_config(retriever.config, click_stats=click_stats)
    path = ModelRegistry(settings.home).resolve(model_ref, index=retriever.index, variant=variant)
    return Reranker(retriever, pipeline, RankingModel.load(path, pipeline))


def rerank_with_model(
    settings: Settings,
    retriever: Retriever,
    model_ref: str,
    query_text: str,
    *,
    filters: Sequence[dict[str, Any]] = (),
    window: int | None = None,
    request_time: datetime | None = None,
) -> RerankResult:
    """One query reranked by a model (what ``hybridrank search --model`` calls).

    ``request_time`` defaults to now, taken once here at the request boundary: the features
    themselves never read the clock.
    """
    reranker = load_reranker(settings, retriever, model_ref)
    source = list(dict.fromkeys([*retriever.config.text_fields, *retriever.config.keyword_fields]))
    return reranker.rerank(query_text, request_time=request_time or datetime.now(UTC), filters=filters,
                           window=window, source=source)
