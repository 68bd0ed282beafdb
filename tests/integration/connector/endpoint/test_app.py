"""The endpoint, driven by the official Elasticsearch client, against the real node.

uvicorn runs the app in a thread on a free loopback port; its upstream is the real node. Every
reranked answer is compared with what Elasticsearch itself says for the same request.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.endpoint.thread import ServerThread, free_port
from hybridrank.config import IndexConfig, Settings
from tests.support.indices import temporary_index

WINDOW = 20


@pytest.fixture(scope="module")
def profiled(es: Elasticsearch, embedder: Any, shared_datasets: Path) -> Iterator[str]:
    with temporary_index(es, embedder, shared_datasets, "test-serve") as name:
        yield name


@pytest.fixture(scope="module")
def profile_settings(settings: Settings, profiled: str) -> Settings:
    config = IndexConfig(candidate_window=WINDOW, knn_num_candidates=50)
    return settings.model_copy(update={"indices": {profiled: config}})


@pytest.fixture(scope="module")
def endpoint(profile_settings: Settings, embedder: Any) -> Iterator[ServerThread]:
    app = Endpoint(profile_settings, embedder=embedder, holder=RankerHolder(profile_settings.indices))
    with ServerThread(app) as server:
        yield server


@pytest.fixture(scope="module")
def via(endpoint: ServerThread) -> Iterator[Elasticsearch]:
    client = Elasticsearch(endpoint.url, request_timeout=30, max_retries=0)
    yield client
    client.close()


def _ids(response: Any) -> list[str]:
    return [h["_id"] for h in response["hits"]["hits"]]


APP_QUERY = {"bool": {"must": [{"match": {"text": "cells protein expression"}}],
                      "filter": [{"terms": {"category": ["alpha", "beta"]}}]}}


def test_index_bulk_and_get_through_the_endpoint(via: Elasticsearch, es: Elasticsearch) -> None:
    name = f"test-serve-crud-{uuid.uuid4().hex[:8]}"
    try:
        via.indices.create(index=name, mappings={"properties": {"title": {"type": "text"}}})
        result = via.bulk(operations=[{"index": {"_index": name, "_id": "a"}}, {"title": "hello world"},
                                      {"index": {"_index": name, "_id": "b"}}, {"title": "goodbye"}], refresh=True)
        assert not result["errors"] and len(result["items"]) == 2
        doc = via.get(index=name, id="a")
        assert doc["_source"] == {"title": "hello world"}
        assert doc.body == es.get(index=name, id="a").body
        assert via.count(index=name)["count"] == 2
        with pytest.raises(NotFoundError):
            via.get(index=name, id="missing")
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def test_large_and_chunked_bodies_stream_through(endpoint: ServerThread, es: Elasticsearch) -> None:
    name = f"test-serve-big-{uuid.uuid4().hex[:8]}"
    lines = []
    for i in range(2500):
        lines.append(json.dumps({"index": {"_index": name, "_id": str(i)}}))
        lines.append(json.dumps({"title": f"doc {i} " + "x" * 500}))
    payload = ("\n".join(lines) + "\n").encode()
    assert len(payload) > 1 << 20  # above the read-whole threshold: streamed
    try:
        big = httpx.post(f"{endpoint.url}/_bulk?refresh=true", content=payload,
                         headers={"content-type": "application/x-ndjson"}, timeout=60)
        assert big.status_code == 200 and big.json()["errors"] is False and len(big.json()["items"]) == 2500

        def chunks() -> Iterator[bytes]:
            yield b'{"index": {"_index": "' + name.encode() + b'", "_id": "c"}}\n'
            yield b'{"title": "chunked"}\n'

        chunked = httpx.post(f"{endpoint.url}/_bulk?refresh=true", content=chunks(),
                             headers={"content-type": "application/x-ndjson"})
        assert chunked.status_code == 200 and chunked.json()["errors"] is False
        assert es.count(index=name)["count"] == 2501
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


def test_search_with_the_apps_dsl_is_reranked_and_keeps_filters(via: Elasticsearch, profiled: str) -> None:
    response = via.search(index=profiled, query=APP_QUERY, size=10, source_includes=["category", "title"])
    assert response.meta.headers["X-Hybridrank-Ranker"] == "hybrid"
    assert "X-Hybridrank-Fallback" not in response.meta.headers
    hits = response["hits"]["hits"]
    assert len(hits) == 10
    assert all(h["_source"]["category"] in ("alpha", "beta") for h in hits)  # the filter held on both legs
    scores = [h["_score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert response["hits"]["max_score"] == scores[0]
    assert set(response.body) >= {"took", "timed_out", "_shards", "hits"}


def test_total_and_aggregations_are_elasticsearchs_own(via: Elasticsearch, es: Elasticsearch, profiled: str) -> None:
    aggs = {"by_category": {"terms": {"field": "category"}}, "years": {"stats": {"field": "year"}}}
    ours = via.search(index=profiled, query=APP_QUERY, aggs=aggs, size=5, track_total_hits=True)
    theirs = es.search(index=profiled, query=APP_QUERY, aggs=aggs, size=5, track_total_hits=True)
    assert ours["aggregations"] == theirs["aggregations"]
    assert ours["hits"]["total"] == theirs["hits"]["total"]
    assert ours["_shards"] == theirs["_shards"]


def test_paging_inside_the_window(via: Elasticsearch, profiled: str) -> None:
    full = _ids(via.search(index=profiled, query=APP_QUERY, size=10))
    first = _ids(via.search(index=profiled, query=APP_QUERY, size=5))
    second = _ids(via.search(index=profiled, query=APP_QUERY, size=5, from_=5))
    assert first + second == full
    assert len(set(full)) == 10


def test_from_beyond_the_window_is_an_elasticsearch_shaped_400(via: Elasticsearch, profiled: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        via.search(index=profiled, query=APP_QUERY, size=10, from_=WINDOW)
    error = caught.value.body["error"]
    assert error["type"] == "illegal_argument_exception"
    assert f"[{WINDOW}]" in error["reason"] and error["root_cause"][0]["type"] == "illegal_argument_exception"
    assert caught.value.body["status"] == 400


def test_what_elasticsearch_would_refuse_it_refuses_itself(via: Elasticsearch, es: Elasticsearch,
                                                           endpoint: ServerThread, settings: Settings,
                                                           profiled: str) -> None:
    """Beyond Elasticsearch's own result window, and an ``explain`` that is not a boolean: its own error."""
    for kwargs in ({"size": 10_001}, {"size": 10, "from_": 9_995}):
        answers = []
        for client in (via, es):
            with pytest.raises(BadRequestError) as caught:
                client.search(index=profiled, query=APP_QUERY, **kwargs)
            answers.append((caught.value.body["error"]["type"], caught.value.body["error"]["root_cause"],
                            caught.value.body["status"]))
        assert answers[0] == answers[1] and answers[0][0] == "search_phase_execution_exception", kwargs
    for bad in ("yes", {"a": 1}):
        body = json.dumps({"query": APP_QUERY, "explain": bad})
        ours = httpx.post(f"{endpoint.url}/{profiled}/_search", content=body,
                          headers={"content-type": "application/json"})
        theirs = httpx.post(f"{settings.cluster.url}/{profiled}/_search", content=body,
                            headers={"content-type": "application/json"})
        assert ours.status_code == theirs.status_code == 400, bad
        assert ours.json()["error"]["type"] == theirs.json()["error"]["type"], bad
    ours = httpx.post(f"{endpoint.url}/{profiled}/_search?explain=yes", json={"query": APP_QUERY})
    theirs = httpx.post(f"{settings.cluster.url}/{profiled}/_search?explain=yes", json={"query": APP_QUERY})
    assert ours.status_code == theirs.status_code == 400
    assert ours.json()["error"]["type"] == theirs.json()["error"]["type"]


def test_an_apps_explain_keeps_elasticsearchs_explanation_beside_ours(via: Elasticsearch, es: Elasticsearch,
                                                                       profiled: str) -> None:
    ours = via.search(index=profiled, query=APP_QUERY, size=WINDOW, explain=True)
    direct = {h["_id"]: h for h in es.search(index=profiled, query=APP_QUERY, size=100, explain=True)["hits"]["hits"]}
    assert ours["hits"]["hits"]
    for hit in ours["hits"]["hits"]:
        assert {"_shard", "_node", "_explanation", "_hybridrank"} <= set(hit), hit.keys()
        if hit["_id"] in direct:  # the app's query matches it: Elasticsearch's explanation of that query is in it
            assert direct[hit["_id"]]["_explanation"] in _explanations(hit["_explanation"])
            assert hit["_shard"] == direct[hit["_id"]]["_shard"] and hit["_node"] == direct[hit["_id"]]["_node"]


def _explanations(node: dict[str, Any]) -> list[dict[str, Any]]:
    """An explanation and every explanation under it."""
    return [node, *(e for detail in node.get("details", []) for e in _explanations(detail))]


def test_the_clients_info_and_ping_through_the_endpoint(via: Elasticsearch, es: Elasticsearch) -> None:
    assert via.ping() is True
    ours, theirs = via.info().body, es.info().body
    assert ours["version"]["number"] == theirs["version"]["number"]
    assert ours["cluster_name"] == theirs["cluster_name"] and ours["tagline"] == theirs["tagline"]


def test_source_filtering_applies_to_every_hit(via: Elasticsearch, profiled: str) -> None:
    response = via.search(index=profiled, query=APP_QUERY, size=WINDOW, source_includes=["title"])
    assert response["hits"]["hits"]
    assert all(set(h["_source"]) <= {"title"} for h in response["hits"]["hits"])
    bare = via.search(index=profiled, query=APP_QUERY, size=3, source=False)
    assert all("_source" not in h for h in bare["hits"]["hits"])


def test_highlight_and_named_queries_render_like_elasticsearch(via: Elasticsearch, es: Elasticsearch,
                                                                profiled: str) -> None:
    query = {"bool": {"must": [{"match": {"text": {"query": "cells protein expression", "operator": "and",
                                                               "_name": "words"}}}],
                      "filter": [{"terms": {"category": ["alpha", "beta"]}}]}}
    highlight: dict[str, Any] = {"fields": {"text": {}}}
    ours = via.options(headers={"X-Hybridrank-Explain": "1"}).search(index=profiled, query=query, size=WINDOW,
                                                                     highlight=highlight)
    direct = es.search(index=profiled, query=query, size=100, highlight=highlight)
    theirs = {h["_id"]: h for h in direct["hits"]["hits"]}
    only_knn = 0
    for hit in ours["hits"]["hits"]:
        if hit["_id"] in theirs:  # the app's query matches it: ES's own highlight and named queries
            assert hit["highlight"] == theirs[hit["_id"]]["highlight"]
            assert hit["matched_queries"] == theirs[hit["_id"]]["matched_queries"] == ["words"]
        else:  # found by the kNN leg alone, the query does not match it: nothing to highlight
            assert "highlight" not in hit and "bm25" not in hit["_hybridrank"]["leg_ranks"]
            only_knn += 1
        assert hit["_source"]["category"] in ("alpha", "beta")
    assert only_knn, "the window holds documents only the kNN leg found"


def test_a_failing_knn_leg_lets_elasticsearch_answer(settings: Settings, embedder: Any, es: Elasticsearch,
                                                     profiled: str) -> None:
    broken = settings.model_copy(update={"indices": {profiled: IndexConfig(vector_field="title",  # not a vector
                                                                           candidate_window=WINDOW)}})
    app = Endpoint(broken, embedder=embedder, holder=RankerHolder(broken.indices), warm_up=False)
    with ServerThread(app) as server:
        client = Elasticsearch(server.url, max_retries=0)
        ours = client.search(index=profiled, query=APP_QUERY, size=5)
        assert ours.meta.headers["X-Hybridrank-Fallback"].startswith("knn-leg-failed")
        assert _ids(ours) == _ids(es.search(index=profiled, query=APP_QUERY, size=5))
        batch = client.msearch(searches=[{"index": profiled}, {"query": APP_QUERY, "size": 5}])["responses"]
        assert _ids(batch[0]) == _ids(ours)
        client.close()


def test_explain_and_variant_off(via: Elasticsearch, es: Elasticsearch, profiled: str) -> None:
    explained = via.options(headers={"X-Hybridrank-Explain": "1"}).search(index=profiled, query=APP_QUERY, size=5)
    info = explained["hits"]["hits"][0]["_hybridrank"]
    assert info["ranker"] == "hybrid" and info["rank"] == 1
    assert set(info["leg_ranks"]) <= {"bm25", "knn"} and info["leg_ranks"]
    off = via.options(headers={"X-Hybridrank-Variant": "off"}).search(index=profiled, query=APP_QUERY, size=5)
    direct = es.search(index=profiled, query=APP_QUERY, size=5)
    assert _ids(off) == _ids(direct)
    assert "X-Hybridrank-Ranker" not in off.meta.headers
    via_ext = via.search(index=profiled, query=APP_QUERY, size=5, ext={"hybridrank": {"variant": "off"}})
    assert _ids(via_ext) == _ids(direct)


def test_sort_and_unprofiled_indices_pass_through(via: Elasticsearch, es: Elasticsearch, profiled: str) -> None:
    body: dict[str, Any] = {"query": APP_QUERY, "sort": [{"year": "asc"}, "_doc"], "size": 7}
    ours, theirs = via.search(index=profiled, **body), es.search(index=profiled, **body)
    assert ours["hits"]["hits"] == theirs["hits"]["hits"]
    assert "X-Hybridrank-Ranker" not in ours.meta.headers


def test_msearch_reranks_profiled_and_relays_the_rest(via: Elasticsearch, es: Elasticsearch, profiled: str) -> None:
    missing = f"test-serve-missing-{uuid.uuid4().hex[:6]}"
    searches: list[dict[str, Any]] = [
        {"index": profiled}, {"query": APP_QUERY, "size": 4},
        {"index": profiled}, {"query": APP_QUERY, "size": 4, "sort": ["_doc"]},
        {"index": missing}, {"query": {"match_all": {}}},
        {"index": profiled}, {"query": APP_QUERY, "size": 4, "from": 4},
    ]
    ours = via.msearch(searches=searches)["responses"]
    single = via.search(index=profiled, query=APP_QUERY, size=8)
    theirs = es.msearch(searches=searches)["responses"]
    assert len(ours) == 4
    assert _ids(ours[0]) + _ids(ours[3]) == _ids(single)
    assert ours[1]["hits"]["hits"] == theirs[1]["hits"]["hits"]
    assert ours[2]["error"] == theirs[2]["error"] and ours[2]["status"] == 404


def test_unknown_index_is_elasticsearchs_own_404(via: Elasticsearch, es: Elasticsearch) -> None:
    missing = f"test-serve-missing-{uuid.uuid4().hex[:6]}"
    with pytest.raises(NotFoundError) as ours:
        via.search(index=missing, query={"match": {"title": "x"}})
    with pytest.raises(NotFoundError) as theirs:
        es.search(index=missing, query={"match": {"title": "x"}})
    assert ours.value.body == theirs.value.body


def test_invalid_json_is_elasticsearchs_own_400(endpoint: ServerThread, settings: Settings, profiled: str) -> None:
    for index in (profiled, "test-serve-nothing"):
        ours = httpx.post(f"{endpoint.url}/{index}/_search", content=b'{"query": {',
                          headers={"content-type": "application/json"})
        theirs = httpx.post(f"{settings.cluster.url}/{index}/_search", content=b'{"query": {',
                            headers={"content-type": "application/json"})
        assert ours.status_code == 400 == theirs.status_code
        assert ours.json() == theirs.json()
        assert ours.json()["error"]["root_cause"]
        assert ours.headers["x-elastic-product"] == "Elasticsearch"


def test_wire_contract_headers(endpoint: ServerThread, profiled: str) -> None:
    compat = "application/vnd.elasticsearch+json; compatible-with=8"
    response = httpx.post(f"{endpoint.url}/{profiled}/_search", json={"query": APP_QUERY, "size": 2},
                          headers={"accept": compat, "content-type": compat, "x-request-id": "abc-123"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=8"
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    assert response.headers["x-request-id"] == "abc-123"
    generated = httpx.get(f"{endpoint.url}/{profiled}/_count")
    assert generated.headers["x-request-id"] and generated.headers["x-elastic-product"] == "Elasticsearch"


def test_metrics_count_requests_and_stages(endpoint: ServerThread, via: Elasticsearch, profiled: str) -> None:
    via.search(index=profiled, query=APP_QUERY, size=3)
    text = httpx.get(f"{endpoint.url}/_hybridrank/metrics").text
    assert 'hybridrank_requests_total{outcome="reranked",route="search"}' in text
    assert 'hybridrank_stage_seconds_count{stage="retrieve"}' in text
    assert 'hybridrank_stage_seconds_count{stage="embed"}' in text


def test_dead_upstream_is_an_elasticsearch_shaped_503_within_2s(profile_settings: Settings, embedder: Any,
                                                              profiled: str) -> None:
    dead = Endpoint(profile_settings, upstream_url=f"http://127.0.0.1:{free_port()}", embedder=embedder,
                    holder=RankerHolder(profile_settings.indices), warm_up=False)
    with ServerThread(dead) as server:
        for path, body in ((f"/{profiled}/_search", {"query": APP_QUERY}), ("/other/_doc/1", None)):
            start = time.monotonic()
            response = httpx.request("POST" if body else "GET", server.url + path, json=body, timeout=10)
            assert time.monotonic() - start < 2.0
            assert response.status_code == 503
            assert response.json()["error"]["root_cause"][0]["type"] == "connect_transport_exception"
            assert response.json()["status"] == 503
            assert response.headers["x-elastic-product"] == "Elasticsearch"
