"""How a window is ordered: the rankers the endpoint serves, and the same code run offline.

- ``HybridOrder``: the fused score (linear fusion of the two legs); always available, and what the
  endpoint falls back to whenever a learned model cannot serve.
- ``EsOrder``: Elasticsearch's own order of the app's query (the lexical leg), kNN-only documents
  after it by dense rank; ``RrfOrder``: reciprocal rank fusion of the legs. Both are experiment
  baselines, asked for by ranker spec.
- ``LearnedRanker``: the feature pipeline (the logging code path) + a ``ltr.training.model.RankingModel``,
  best score first, ties by doc id; ``rerank_many`` orders several windows with one feature ``_msearch``.
- ``Reranker``, ``rerank_windows``, ``rerank_with_model``: the offline path (evaluation, ``hybridrank
  search --model``): retrieve the window (every candidate either leg found,
  ``ltr.training.feature_log.window_candidates``), then order it with ``LearnedRanker``.

A ranker spec (``es``, ``hybrid``, ``rrf``, ``model:<id>``, ``variant:<registry variant>``) names a ranker;
which model serves which (index, variant) is ``connector.endpoint.serving``. The endpoint imports this
module for its fusion orders, so everything a learned ranker needs (features, ``ltr.training``) is
imported where it is used: ``connector.endpoint.serving.learned_holder`` feature-detects it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from connector.credentials import Credentials, on_behalf_of
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate
from connector.retrieval.fusion import FUSIONS, ordered
from hybridrank.config import IndexConfig

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connector.retrieval.retriever import Retriever
    from features.base import ClickStats
    from features.pipeline import FeaturePipeline, FeatureRequest
    from hybridrank.config import Settings
    from ltr.training.model import RankingModel

HYBRID = "hybrid"  # the variant name that asks for hybrid order explicitly (no fallback reported)
ES_ORDER = "es"
RRF = "rrf"
MODEL_PREFIX = "model:"
VARIANT_PREFIX = "variant:"


def is_ranker_spec(text: str) -> bool:
    """Whether ``text`` is a ranker spec rather than a bare registry variant name."""
    return text in (HYBRID, ES_ORDER, RRF) or text.startswith((MODEL_PREFIX, VARIANT_PREFIX))


@dataclass
class Ranked:
    """The reranked window: candidates best first, their scores, and what produced them."""

    candidates: list[Candidate]
    scores: list[float]
    ranker: str
    model_id: str | None = None
    feature_names: list[str] | None = None
    features: np.ndarray | None = None  # rows in ``candidates`` order
    fallback: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    teams: list[str] | None = None  # interleaving: the team ("A", "B", ...) that placed each candidate
    team_rankers: dict[str, dict[str, Any]] | None = None  # interleaving: team -> variant, ranker, model
    shared_prefix: int = 0  # interleaving: top ranks every team's ranking has in common (same docs, order)


class Ranker(Protocol):
    """What the endpoint calls. ``blocking`` rankers run in a worker thread.

    ``credentials``: whose identity a ranker's own requests to Elasticsearch carry — the app's, when the
    endpoint reranks its search (``connector.credentials``); None = the ranker's client's own (offline use).
    """

    name: str
    blocking: bool

    def rerank(self, index: str, query_text: str, query_vector: np.ndarray | None,
               candidates: Sequence[Candidate], request_time: datetime, *,
               credentials: Credentials | None = None) -> Ranked: ...


class HybridOrder:
    """A fusion of the legs in the profile's settings: ``linear`` (min-max normalised, the profile's dense
    weight) is the hybrid order every fallback uses; ``RrfOrder`` is the same with reciprocal rank fusion."""

    name = HYBRID
    fusion = "linear"
    blocking = False

    def __init__(self, profiles: Mapping[str, IndexConfig]) -> None:
        self.profiles = profiles

    def rerank(self, index: str, query_text: str, query_vector: np.ndarray | None,
               candidates: Sequence[Candidate], request_time: datetime, *,
               credentials: Credentials | None = None) -> Ranked:
        config = self.profiles.get(index) or IndexConfig()
        FUSIONS[self.fusion](candidates, k=config.rrf_k, weight=config.linear_weight)
        best = ordered(candidates)
        return Ranked(best, [c.fused_score for c in best], ranker=self.name)


class EsOrder:
    """Elasticsearch's own order of the app's query; documents only the kNN leg found follow by dense rank.

    Lexical hits keep Elasticsearch's score; kNN-only documents score 0 (the app's query did not match).
    """

    name = ES_ORDER
    blocking = False

    def rerank(self, index: str, query_text: str, query_vector: np.ndarray | None,
               candidates: Sequence[Candidate], request_time: datetime, *,
               credentials: Credentials | None = None) -> Ranked:
        lexical = sorted((c for c in candidates if c.found_by(LEXICAL)), key=lambda c: c.leg_ranks[LEXICAL])
        dense = sorted((c for c in candidates if not c.found_by(LEXICAL)),
                       key=lambda c: (c.leg_ranks.get(DENSE, 1 << 30), c.doc_id))
        return Ranked(lexical + dense, [c.leg_scores[LEXICAL] for c in lexical] + [0.0] * len(dense),
                      ranker=self.name)


class RrfOrder(HybridOrder):
    """Reciprocal rank fusion of the legs (the profile's ``rrf_k``)."""

    name = RRF
    fusion = "rrf"


class LearnedRanker:
    """Features for every candidate (one upstream search), scored by a model, best first."""

    blocking = True

    def __init__(self, model: Any, pipeline: Any, client: Elasticsearch) -> None:
        self.model = model
        self.pipeline = pipeline
        self.client = client
        self.name = f"model:{model.model_id}"

    def needs_thread(self, candidates: Sequence[Candidate]) -> bool:
        """Whether ranking ``candidates`` waits on Elasticsearch (their exact scores not carried by the legs):
        the endpoint then runs it in a worker thread, else inline (a thread hop costs more than the work)."""
        return bool(self.pipeline.needs_io(candidates))

    def rerank(self, index: str, query_text: str, query_vector: np.ndarray | None,
               candidates: Sequence[Candidate], request_time: datetime, *,
               credentials: Credentials | None = None) -> Ranked:
        start = time.perf_counter()
        client = self.client if credentials is None else on_behalf_of(self.client, credentials)
        matrix = self.pipeline.compute(client, index, query_text, query_vector, candidates,
                                       request_time=request_time)
        return self._ordered(candidates, matrix, features_s=time.perf_counter() - start)

    def rerank_many(self, index: str, requests: Sequence[FeatureRequest]) -> list[Ranked]:
        """One ranked window per request, the features of all of them fetched together (one ``_msearch``
        per ``msearch_batch`` queries); each window's ``features`` timing is the whole batch's."""
        start = time.perf_counter()
        matrices = self.pipeline.compute_many(self.client, index, requests)
        features_s = time.perf_counter() - start
        return [self._ordered(request.candidates, matrix, features_s=features_s)
                for request, matrix in zip(requests, matrices, strict=True)]

    def _ordered(self, candidates: Sequence[Candidate], matrix: np.ndarray, *, features_s: float) -> Ranked:
        start = time.perf_counter()
        scores = np.asarray(self.model.score(matrix), dtype=np.float64)
        end = time.perf_counter()
        cands = list(candidates)
        values = scores.tolist()  # Python floats, as float(scores[i]), without a numpy scalar per lookup
        # best first, ties by doc id: sorted by id, then stably by the negated score (one lookup per
        # comparison key in C, no tuple or lambda call per candidate: the same order as the key (-score, id))
        order = sorted(range(len(cands)), key=[c.doc_id for c in cands].__getitem__)
        order.sort(key=(-scores).tolist().__getitem__)
        return Ranked([cands[i] for i in order], [values[i] for i in order], ranker=self.name,
                      model_id=str(self.model.model_id), feature_names=list(self.pipeline.names),
                      features=matrix[order], timings={"features": features_s, "score": end - start})


class Reranker:
    """A retriever + a ``LearnedRanker`` on its client, for a model whose contract matches the pipeline.

    The windows it returns carry the model score as each candidate's ``fused_score`` too (their score
    in this ranking, as the retriever's windows carry theirs).
    """

    def __init__(self, retriever: Retriever, pipeline: FeaturePipeline, model: RankingModel) -> None:
        from ltr.training.contract import check_contract

        check_contract(model.contract, pipeline)
        self.retriever = retriever
        self.pipeline = pipeline
        self.model = model
        self.ranker = LearnedRanker(model, pipeline, retriever.client)

    def rerank(
        self,
        query_text: str,
        *,
        request_time: datetime,
        filters: Sequence[dict[str, Any]] = (),
        window: int | None = None,
        source: bool | Sequence[str] = False,
    ) -> Ranked:
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
    ) -> list[Ranked]:
        """Rerank several queries with one ``_msearch`` for the legs and one for the features."""
        from features.base import as_utc
        from ltr.training.feature_log import retrieve_requests

        requests = retrieve_requests(self.retriever, query_texts, request_time=as_utc(request_time), window=window,
                                     filters=filters, source=source, pipeline=self.pipeline)
        windows = self.ranker.rerank_many(self.retriever.index, requests)
        for ranked in windows:
            for cand, score in zip(ranked.candidates, ranked.scores, strict=True):
                cand.fused_score = score
        return windows


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
    from features.pipeline import FeaturePipeline
    from ltr.training.model import RankingModel
    from ltr.training.registry import ModelRegistry

    pipeline = FeaturePipeline.from_config(retriever.config, click_stats=click_stats)
    path = ModelRegistry.from_settings(settings).resolve(model_ref, index=retriever.index, variant=variant)
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
) -> Ranked:
    """One query reranked by a model (what ``hybridrank search --model`` calls).

    ``request_time`` defaults to now, taken once here at the request boundary: the features
    themselves never read the clock.
    """
    reranker = load_reranker(settings, retriever, model_ref)
    source = list(dict.fromkeys([*retriever.config.text_fields, *retriever.config.keyword_fields]))
    return reranker.rerank(query_text, request_time=request_time or datetime.now(UTC), filters=filters,
                           window=window, source=source)
