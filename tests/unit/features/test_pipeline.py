"""The feature pipeline: the single exact-score round trip (faked at the transport), matrices, hashing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch

from connector.retrieval.candidates import Candidate
from features.pipeline import FeaturePipeline, FeatureRequest, exact_scores_body, parse_exact_scores
from hybridrank.config import IndexConfig
from hybridrank.errors import ClusterError

NOW = datetime(2025, 1, 1, tzinfo=UTC)
CFG = IndexConfig(text_fields={"title": 1.0, "text": 1.0})


class MsearchNode(BaseNode):
    """Answers ``_msearch`` with ``responses`` (one per search, in order) and records each request."""

    responses: ClassVar[list[dict[str, Any]]] = []
    calls: ClassVar[list[tuple[str, list[dict[str, Any]]]]] = []

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        lines = [json.loads(line) for line in (body or b"").decode().splitlines() if line.strip()]
        MsearchNode.calls.append((target, lines))
        n = len(lines) // 2
        payload = {"took": 1, "responses": MsearchNode.responses[:n]}
        meta = ApiResponseMeta(status=200, http_version="1.1", duration=0.0, node=self.config,
                               headers=HttpHeaders({"content-type": "application/json",
                                                    "x-elastic-product": "Elasticsearch"}))
        return NodeApiResponse(meta, json.dumps(payload).encode())

    def close(self) -> None:
        pass


@pytest.fixture()
def client() -> Elasticsearch:
    MsearchNode.calls.clear()
    MsearchNode.responses = []
    return Elasticsearch("http://fake:9200", node_class=MsearchNode)


def _hit(doc_id: str, named: dict[str, float] | None) -> dict[str, Any]:
    hit: dict[str, Any] = {"_id": doc_id, "_index": "idx", "_score": 1.0}
    if named is not None:
        hit["matched_queries"] = named
    return hit


CANDS = [Candidate("a", leg_scores={"bm25": 3.0}, leg_ranks={"bm25": 1}),
         Candidate("b", leg_scores={"knn": 0.9}, leg_ranks={"knn": 1}),
         Candidate("c", leg_scores={"knn": 0.8}, leg_ranks={"knn": 2})]


def test_exact_scores_body_is_one_restricted_named_search() -> None:
    body = exact_scores_body("q", [0.5, 0.5], ["a", "b"], ["title", "text"], "embedding", source_fields=["ts"])
    ids = {"ids": {"values": ["a", "b"]}}
    assert body == {
        "query": {"bool": {"filter": [ids], "should": [
            {"match": {"title": {"query": "q", "_name": "bm25:title"}}},
            {"match": {"text": {"query": "q", "_name": "bm25:text"}}},
            {"knn": {"field": "embedding", "query_vector": [0.5, 0.5], "k": 2, "num_candidates": 2,
                     "filter": ids, "rescore_vector": {"oversample": 1.0}, "_name": "dense"}},
        ]}},
        "size": 2, "_source": ["ts"], "track_total_hits": False,
    }
    assert "knn" not in json.dumps(exact_scores_body("q", None, ["a"], ["t"], "e"))


def test_parse_exact_scores_refuses_scoreless_matched_queries() -> None:
    parsed = parse_exact_scores({"hits": {"hits": [_hit("a", {"bm25:title": 2.5})]}})
    assert parsed["a"].named == {"bm25:title": 2.5} and parsed["a"].found
    with pytest.raises(ClusterError, match="include_named_queries_score"):
        parse_exact_scores({"hits": {"hits": [{"_id": "a", "matched_queries": ["bm25:title"]}]}})


def test_compute_many_one_round_trip_for_a_batch(client: Elasticsearch) -> None:
    pipeline = FeaturePipeline(["bm25_title", "bm25_text", "dense_cosine", "rank_knn"], CFG)
    MsearchNode.responses = [
        {"hits": {"hits": [_hit("a", {"bm25:title": 2.0, "dense": 0.75}), _hit("b", {"dense": 0.875}),
                           _hit("c", None)]}},  # c: returned, matched nothing, has no vector
        {"hits": {"hits": [_hit("a", {"bm25:text": 1.5})]}},  # b of the 2nd query is gone
    ]
    requests = [FeatureRequest("heart", np.array([1.0, 0.0]), CANDS, NOW),
                FeatureRequest("empty window", np.array([1.0, 0.0]), [], NOW),
                FeatureRequest("lung", np.array([0.0, 1.0]), CANDS[:2], NOW)]
    first, empty, second = pipeline.compute_many(client, "idx", requests)
    assert len(MsearchNode.calls) == 1
    target, lines = MsearchNode.calls[0]
    assert target.startswith("/_msearch") and "include_named_queries_score=true" in target
    assert [line for line in lines[::2]] == [{"index": "idx"}, {"index": "idx"}]  # the empty window sent nothing
    assert lines[1]["query"]["bool"]["filter"] == [{"ids": {"values": ["a", "b", "c"]}}]
    np.testing.assert_array_equal(first[0], [2.0, 0.0, 0.5, math.nan])
    np.testing.assert_array_equal(first[1], [0.0, 0.0, 0.75, 1.0])
    np.testing.assert_array_equal(first[2], [0.0, 0.0, math.nan, 2.0])
    assert empty.shape == (0, 4)
    np.testing.assert_array_equal(second, [[0.0, 1.5, math.nan, math.nan], [math.nan, math.nan, math.nan, 1.0]])
    assert second.dtype == np.float64


def test_search_error_in_a_response_is_a_cluster_error(client: Elasticsearch) -> None:
    MsearchNode.responses = [{"error": {"type": "query_shard_exception", "reason": "failed to create query",
                                        "root_cause": [{"reason": "bad vector dims"}]}, "status": 400}]
    pipeline = FeaturePipeline(["bm25_title"], CFG)
    with pytest.raises(ClusterError, match="bad vector dims"):
        pipeline.compute(client, "idx", "q", None, CANDS[:1], request_time=NOW)


def test_config_hash_covers_names_order_and_parameters() -> None:
    cfg = IndexConfig(timestamp_field="ts")
    base = FeaturePipeline(["bm25_title", "freshness"], cfg)
    assert base.config_hash() == FeaturePipeline(["bm25_title", "freshness"], cfg).config_hash()
    assert base.config_hash() != FeaturePipeline(["freshness", "bm25_title"], cfg).config_hash()
    longer = IndexConfig(timestamp_field="ts", freshness_half_life_days=7)
    assert base.config_hash() != FeaturePipeline(["bm25_title", "freshness"], longer).config_hash()
    assert base.source_fields == ["ts"]
    assert FeaturePipeline.from_config(IndexConfig(features=["dense_cosine"])).names == ["dense_cosine"]


def test_read_feature_log_refuses_what_is_not_a_log(tmp_path: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hybridrank.errors import DataError
    from ltr.training.feature_log import read_feature_log

    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet feature log"):
        read_feature_log(tmp_path / "junk.parquet")
    pq.write_table(pa.table({"qid": ["q"]}), tmp_path / "plain.parquet")
    with pytest.raises(DataError, match="not a hybridrank feature log"):
        read_feature_log(tmp_path / "plain.parquet")


def test_needs_io_unless_every_candidate_carries_this_feature_sets_scores() -> None:
    from features.base import ExactScores

    pipeline = FeaturePipeline(["bm25_best_fields", "rank_bm25"], IndexConfig(text_fields={"title": 1.0}))
    carried = [Candidate(f"d{i}", exact=ExactScores({}), exact_by=pipeline.exact_signature) for i in range(3)]
    assert not pipeline.needs_io(carried) and not pipeline.needs_io([])
    assert pipeline.needs_io([*carried, Candidate("fresh")])  # one without its scores: the pipeline searches
    assert pipeline.needs_io([*carried, Candidate("other", exact=ExactScores({}), exact_by="another-clause-set")])
