"""The learned ranker's ordering: one window or a batch, the same scores, best first, ties by doc id;
the offline ``Reranker`` orders retrieved windows with it (no cluster: the retriever is a stand-in)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np

from connector.retrieval.candidates import LEXICAL, Candidate
from connector.retrieval.retriever import QueryLegs
from features.pipeline import FeatureRequest
from hybridrank.config import IndexConfig
from ltr.ranking import EsOrder, LearnedRanker, Reranker, RrfOrder, is_ranker_spec
from tests.support.candidates import small_window

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class OneColumnPipeline:
    """Feature ``f`` = the number after the doc id's dash; fetches nothing (no cluster)."""

    def __init__(self) -> None:
        self.names = ["f"]
        self.batches: list[int] = []

    def compute(self, client: Any, index: str, query_text: str, query_vector: np.ndarray | None,
                candidates: Sequence[Candidate], *, request_time: datetime) -> np.ndarray:
        return self.compute_many(client, index, [FeatureRequest(query_text, query_vector, list(candidates),
                                                                request_time)])[0]

    def compute_many(self, client: Any, index: str, requests: Sequence[FeatureRequest]) -> list[np.ndarray]:
        self.batches.append(len(requests))
        return [np.array([[float(c.doc_id.split("-")[1])] for c in r.candidates]).reshape(-1, 1) for r in requests]

    # what the contract check compares
    def feature_params(self) -> list[dict[str, Any]]:
        return [{"name": "f"}]

    def context_params(self) -> dict[str, Any]:
        return {}

    def config_hash(self) -> str:
        return "h1"

    def exact_scoring(self, *_: Any) -> None:
        return None  # the legs carry nothing: ``compute_many`` is the pipeline's own


class Doubling:
    model_id = "m1"
    contract = SimpleNamespace(model_id="m1", feature_names=["f"], feature_params=[{"name": "f"}],
                               context_params={}, feature_config_hash="h1")

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return matrix[:, 0] * 2.0


def _window(*ids: str) -> list[Candidate]:
    return [Candidate(doc_id) for doc_id in ids]


def test_a_window_is_ordered_by_model_score_ties_by_doc_id() -> None:
    ranker = LearnedRanker(Doubling(), OneColumnPipeline(), client=None)  # type: ignore[arg-type]
    ranked = ranker.rerank("i", "q", None, _window("c-1", "b-3", "a-1", "d-2"), NOW)
    assert [c.doc_id for c in ranked.candidates] == ["b-3", "d-2", "a-1", "c-1"]
    assert ranked.scores == [6.0, 4.0, 2.0, 2.0]
    assert ranked.features is not None and ranked.features[:, 0].tolist() == [3.0, 2.0, 1.0, 1.0]
    assert ranked.ranker == "model:m1" and ranked.model_id == "m1" and ranked.feature_names == ["f"]
    assert set(ranked.timings) == {"features", "score"}


def test_a_batch_orders_each_window_as_alone_with_one_feature_fetch() -> None:
    pipeline = OneColumnPipeline()
    ranker = LearnedRanker(Doubling(), pipeline, client=None)  # type: ignore[arg-type]
    windows = [_window("c-1", "b-3", "a-1"), _window("x-5", "y-5"), []]
    batch = ranker.rerank_many("i", [FeatureRequest("q", None, w, NOW) for w in windows])
    assert pipeline.batches == [3]
    for window, ranked in zip(windows, batch, strict=True):
        alone = ranker.rerank("i", "q", None, window, NOW)
        assert [c.doc_id for c in ranked.candidates] == [c.doc_id for c in alone.candidates]
        assert ranked.scores == alone.scores
    assert [c.doc_id for c in batch[1].candidates] == ["x-5", "y-5"] and batch[2].candidates == []


def test_ranker_specs() -> None:
    assert all(is_ranker_spec(s) for s in ("es", "hybrid", "rrf", "model:m1", "variant:b"))
    assert not is_ranker_spec("default")


class Windows:
    """A retriever stand-in: each query's window is the lexical leg named in it (``"a-1 b-3"``)."""

    client = None
    index = "i"
    config = IndexConfig()
    vector_script_lang = None  # no script: the pipeline's own exact scores (none here)

    embedder = SimpleNamespace(encode_query=lambda text: np.zeros(2))

    def legs_many(self, query_texts: Sequence[str], **_: Any) -> list[QueryLegs]:
        return [QueryLegs({d: Candidate(d, leg_scores={LEXICAL: 1.0}, leg_ranks={LEXICAL: r})
                           for r, d in enumerate(text.split(), start=1)}, 10) for text in query_texts]


def test_the_offline_reranker_orders_with_the_learned_ranker_and_keeps_the_score_as_fused_score() -> None:
    pipeline = OneColumnPipeline()
    reranker = Reranker(Windows(), pipeline, Doubling())  # type: ignore[arg-type]
    first, second = reranker.rerank_many(["c-1 b-3 a-1", "x-2"], request_time=NOW)
    assert pipeline.batches == [2]  # one feature fetch for the batch
    assert [c.doc_id for c in first.candidates] == ["b-3", "a-1", "c-1"] and first.scores == [6.0, 2.0, 2.0]
    assert [c.fused_score for c in first.candidates] == first.scores
    assert [c.fused_score for c in second.candidates] == [4.0] and second.model_id == "m1"


def test_es_order_is_the_lexical_order_then_knn_only_docs() -> None:
    ranked = EsOrder().rerank("i", "q", None, small_window(), NOW)
    assert [c.doc_id for c in ranked.candidates] == ["b", "a", "c", "d"]
    assert ranked.scores == [5.0, 3.0, 0.0, 0.0] and ranked.ranker == "es"
    rrf = RrfOrder({}).rerank("i", "q", None, small_window(), NOW)
    assert rrf.candidates[0].doc_id == "b"
