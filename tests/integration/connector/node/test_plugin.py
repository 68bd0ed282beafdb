"""The project's own plugin on the suite's node: ``GET /``, the native vector-similarity script, English stemming.

The suite's node gets the plugin from its launcher (``connector.node.plugin``); a cluster named by
``ES_URL`` may be a stock one, which has these capabilities from its own modules instead.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from elasticsearch import BadRequestError

from connector.node.capabilities import ClusterInfo, detect

VECTORS = {"a": [0.1, 0.9, 0.2, 0.4], "b": [0.8, -0.3, 0.5, 0.1], "c": [0.3, 0.3, 0.3, 0.3],
           "d": [-0.6, 0.2, 0.9, 0.05], "e": [0.05, 0.1, -0.2, 0.97]}
QUERY = [0.3, 0.4, -0.1, 0.6]
SIMILARITIES = ("cosine", "dot_product", "l2_norm")


def _unit(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


@pytest.fixture(scope="module")
def info(es: Any) -> ClusterInfo:
    found = detect(es)
    if not found.has_hybridrank_plugin:
        if os.environ.get("ES_URL") or os.environ.get("HYBRIDRANK_ES_URL"):
            pytest.skip("the cluster named by ES_URL has no hybridrank plugin (a stock cluster need not)")
        pytest.fail("the suite's own node has no hybridrank plugin: scripts/bootstrap.sh builds it, the launcher "
                    "installs it (a node started before the build loads it only when restarted)")
    return found


def test_the_root_answers_as_a_stock_node_does(es: Any, info: ClusterInfo) -> None:
    assert es.ping() is True
    body = es.info().body
    assert list(body) == ["name", "cluster_name", "cluster_uuid", "version", "tagline"]
    assert body["version"]["number"] == info.version and body["tagline"] == "You Know, for Search"
    assert "hybridrank plugin: yes" in info.describe()


def test_the_script_scores_as_knn_does_for_every_similarity(es: Any, info: ClusterInfo, fresh_index: str) -> None:
    properties = {f"v_{s}": {"type": "dense_vector", "dims": 4, "similarity": s, "index_options": {"type": "hnsw"}}
                  for s in SIMILARITIES}
    es.indices.create(index=fresh_index, mappings={"properties": properties})
    for doc_id, vector in VECTORS.items():
        es.index(index=fresh_index, id=doc_id, document={f"v_{s}": _unit(vector) if s == "dot_product" else vector
                                                         for s in SIMILARITIES})
    es.index(index=fresh_index, id="none", document={})
    es.indices.refresh(index=fresh_index)
    for similarity in SIMILARITIES:
        field = f"v_{similarity}"
        query = _unit(QUERY) if similarity == "dot_product" else QUERY
        knn = es.search(index=fresh_index, knn={"field": field, "query_vector": query, "k": 5, "num_candidates": 10})
        script = es.search(index=fresh_index, size=10, query={"script_score": {
            "query": {"match_all": {}},
            "script": {"lang": "hybridrank", "source": "vector_similarity",
                       "params": {"field": field, "query_vector": query, "similarity": similarity}}}})
        expected = {h["_id"]: h["_score"] for h in knn["hits"]["hits"]}
        got = {h["_id"]: h["_score"] for h in script["hits"]["hits"]}
        assert set(expected) == set(VECTORS) and got["none"] == 0.0  # a document without the field: 0
        assert all(abs(got[d] - expected[d]) < 1e-6 for d in expected), (similarity, expected, got)


def test_a_bad_script_parameter_is_elasticsearchs_400(es: Any, info: ClusterInfo, fresh_index: str) -> None:
    es.indices.create(index=fresh_index, mappings={"properties": {"v": {"type": "dense_vector", "dims": 4}}})
    with pytest.raises(BadRequestError, match="field"):
        es.search(index=fresh_index, query={"script_score": {"query": {"match_all": {}}, "script": {
            "lang": "hybridrank", "source": "vector_similarity", "params": {"query_vector": QUERY}}}})


def test_english_stemming_filters_and_analyzer(es: Any, info: ClusterInfo) -> None:
    def tokens(**body: Any) -> list[str]:
        return [t["token"] for t in es.indices.analyze(text="running foxes' jumped", **body)["tokens"]]

    english = ["hybridrank_english_possessive", "lowercase"]
    assert tokens(tokenizer="standard", filter=[*english, "hybridrank_porter_stem"]) == ["run", "fox", "jump"]
    kstem = tokens(tokenizer="standard", filter=[*english, "hybridrank_kstem"])
    assert kstem == ["running", "fox", "jump"]  # "running" is a word of KStem's dictionary, as in stock kstem
    assert tokens(analyzer="hybridrank_english") == ["run", "fox", "jump"]
