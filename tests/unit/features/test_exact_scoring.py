"""The named clauses a leg carries: one builder for the managed node's script, painless, or none."""

from __future__ import annotations

import pytest

from features.exact_scoring import PAINLESS_COSINE, ExactScoring, vector_clause
from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig
from hybridrank.errors import ClusterError

CONFIG = IndexConfig(text_fields={"title": 1.0, "text": 1.0}, timestamp_field="published", candidate_window=10,
                     knn_num_candidates=10)


def test_the_vector_clause_follows_the_clusters_script_language() -> None:
    managed = vector_clause("hybridrank", "embedding", [1, 0.5])
    assert managed == {"script_score": {
        "query": {"exists": {"field": "embedding"}}, "_name": "dense",
        "script": {"lang": "hybridrank", "source": "vector_similarity",
                   "params": {"field": "embedding", "query_vector": [1.0, 0.5]}}}}
    stock = vector_clause("painless", "embedding", [1, 0.5])
    assert stock is not None and stock["script_score"]["script"]["source"] == PAINLESS_COSINE
    assert stock["script_score"]["script"]["params"] == {"field": "embedding", "query_vector": [1.0, 0.5]}
    assert vector_clause(None, "embedding", [1, 0.5]) is None


def test_a_leg_keeps_its_retrieval_and_gains_the_named_clauses() -> None:
    pipeline = FeaturePipeline(["bm25_title", "bm25_text", "dense_cosine", "age_days"], CONFIG)
    scoring = pipeline.exact_scoring("flu shot", [0.0, 1.0], "hybridrank")
    assert isinstance(scoring, ExactScoring) and scoring.signature == pipeline.exact_signature
    leg = {"query": {"match": {"title": "flu"}}, "size": 10, "_source": False}
    carried = scoring.on_leg(leg)
    assert carried["query"] == leg["query"] and carried["size"] == 10  # retrieval untouched
    # Optional clauses beside a required one in a filter: never run by the query phase, scored on each hit.
    carrier = carried["post_filter"]["bool"]
    assert carrier["filter"] == [{"match_all": {}}] and carrier["minimum_should_match"] == 0
    names = [c["match"][f]["_name"] for c in carrier["should"][:2] for f in c["match"]]
    assert names == ["bm25:title", "bm25:text"]
    assert carried["_source"] == ["published"]  # what the freshness features read
    assert scoring.on_leg({**leg, "_source": ["title"]})["_source"] == ["title", "published"]
    assert "post_filter" not in leg  # the builder does not touch its input
    # The app's own post filter stays the required clause: the leg filters exactly as it asked.
    own = {"term": {"lang": "en"}}
    assert scoring.on_leg({**leg, "post_filter": own})["post_filter"]["bool"]["filter"] == [own]
    assert pipeline.exact_scoring("flu shot", [0.0, 1.0], None) is None  # no script: the fallback search
    assert pipeline.exact_scoring("flu shot", None, None) is not None  # no vector, nothing to script


def test_hits_give_their_named_scores_and_source() -> None:
    scoring = FeaturePipeline(None, CONFIG).exact_scoring("flu", [1.0, 0.0], "painless")
    assert scoring is not None
    exact = scoring.parse({"_id": "a", "matched_queries": {"bm25:title": 1.5, "dense": 0.9},
                           "_source": {"published": "2020-01-01"}})
    assert exact.named == {"bm25:title": 1.5, "dense": 0.9} and exact.source == {"published": "2020-01-01"}
    with pytest.raises(ClusterError, match="include_named_queries_score"):  # never silently zero
        scoring.parse({"_id": "b", "matched_queries": ["bm25:title"]})
