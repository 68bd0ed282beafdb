"""The endpoint's wire contract through ASGI, the upstream Elasticsearch faked at the transport."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from hybridrank.config import FeedbackConfig, IndexConfig, Settings


class FakeEmbedder:
    def encode_query(self, text: str) -> np.ndarray:
        return np.array([1.0, 0.0], dtype=np.float32)


def _hit(doc_id: str, score: float) -> dict[str, Any]:
    return {"_index": "docs", "_id": doc_id, "_score": score, "_source": {"title": doc_id}}


def _upstream(request: httpx.Request) -> httpx.Response:
    """A fake Elasticsearch: _msearch answers the two legs; anything else echoes what it got."""
    if request.url.path == "/_mget":  # the page fetch
        docs = json.loads(request.content)["docs"]
        return httpx.Response(200, json={"docs": [{"_index": d["_index"], "_id": d["_id"], "_version": 1,
                                                   "found": True, "_source": {"title": d["_id"]}} for d in docs]})
    if request.url.path == "/_msearch":
        lines = [json.loads(x) for x in request.content.splitlines() if x.strip()]
        assert request.headers["content-type"].startswith("application/vnd.elasticsearch+x-ndjson")
        if len(lines) == 2:  # the page fetch: render the asked ids
            ids = lines[1]["query"]["bool"]["filter"][0]["ids"]["values"]
            return httpx.Response(200, json={"responses": [{"hits": {"hits": [_hit(i, 0.0) for i in ids]}}]})
        lexical, dense = lines[1], lines[3]
        assert "query" in lexical and "knn" in dense
        return httpx.Response(200, json={"took": 1, "responses": [
            {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
             "hits": {"total": {"value": 2, "relation": "eq"}, "max_score": 3.0,
                      "hits": [_hit("a", 3.0), _hit("b", 2.9), _hit("e", 1.0)]},
             "aggregations": {"n": {"value": 2}}, "status": 200},
            {"took": 1, "timed_out": False,
             "hits": {"max_score": 0.9, "hits": [_hit("c", 0.9), _hit("b", 0.8), _hit("d", 0.1)]},
             "status": 200},
        ]})
    echo = {"method": request.method, "path": request.url.raw_path.decode(), "body": request.content.decode(),
            "auth": request.headers.get("authorization")}
    return httpx.Response(201, stream=httpx.ByteStream(json.dumps(echo).encode()),
                          headers={"X-elastic-product": "Elasticsearch", "Warning": "w",
                                   "content-type": "application/json"})


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    # no cluster behind the fake transport: impressions stay in this test's own spool
    settings = Settings(home=tmp_path, indices={"docs": IndexConfig(candidate_window=10, knn_num_candidates=10)},
                        feedback=FeedbackConfig(log_features=False, flush_interval_s=60))
    endpoint = Endpoint(settings, embedder=FakeEmbedder(), holder=RankerHolder(settings.indices),  # type: ignore[arg-type]
                        warm_up=False, upstream_transport=httpx.MockTransport(_upstream))
    with TestClient(endpoint.app, base_url="http://endpoint") as test_client:
        yield test_client


def test_reranked_search_over_asgi(client: TestClient) -> None:
    compat = "application/vnd.elasticsearch+json; compatible-with=9"
    response = client.post("/docs/_search?explain=true", json={"query": {"match": {"title": "x"}}, "size": 3},
                           headers={"accept": compat, "content-type": compat})
    assert response.status_code == 200
    assert response.headers["x-elastic-product"] == "Elasticsearch"
    assert response.headers["content-type"] == "application/vnd.elasticsearch+json;compatible-with=9"
    body = response.json()
    assert body["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert body["aggregations"] == {"n": {"value": 2}}
    ids = [h["_id"] for h in body["hits"]["hits"]]
    assert ids == ["b", "a", "c"]  # b: near the top of both legs; a and c tie (0.5), broken by id
    assert body["hits"]["hits"][0]["_hybridrank"]["leg_ranks"] == {"bm25": 2, "knn": 2}
    assert body["hits"]["max_score"] == body["hits"]["hits"][0]["_score"]
    assert list(body["hits"]["hits"][1])[:4] == ["_index", "_id", "_score", "_source"]  # ES's key order
    assert body["hits"]["hits"][1]["_source"] == {"title": "a"}


def test_passthrough_is_verbatim(client: TestClient) -> None:
    response = client.put("/docs/_doc/1%2F2?refresh=true", content=b'{"a":1}',
                          headers={"authorization": "Basic dTpw", "content-type": "application/json"})
    assert response.status_code == 201
    assert response.json() == {"method": "PUT", "path": "/docs/_doc/1%2F2?refresh=true", "body": '{"a":1}',
                               "auth": "Basic dTpw"}
    assert response.headers["warning"] == "w" and response.headers["x-request-id"]
