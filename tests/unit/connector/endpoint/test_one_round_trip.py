"""A reranked search on a cluster that can score vectors in a script is ONE upstream request.

Both legs carry the serving pipeline's named clauses (``features.exact_scoring``) in one ``_msearch``
with ``include_named_queries_score``; the learned ranker reads the candidates' exact scores and sends
nothing of its own. The request carries the app's credentials (or none), never the configured ones.
Without the capability the ranker still gets its exact scores, by a search of its own.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.unit.connector.endpoint.test_upstream import APP, CONFIG, CONFIGURED, Recorder, _hit
from tests.unit.connector.endpoint.test_upstream import _endpoint as recording_endpoint

NAMED = {"bm25:title": 2.5, "dense": 0.75}


def _leg_response(body: dict[str, Any]) -> dict[str, Any]:
    carried = "post_filter" in body
    hits = [_hit(i, s) for i, s in (("c", 0.9), ("b", 0.8))] if "knn" in body else \
        [_hit(i, s) for i, s in (("a", 3.0), ("b", 2.0))]
    if carried:
        hits = [{**h, "matched_queries": dict(NAMED)} for h in hits]
    return {"took": 1, "timed_out": False, "hits": {"total": {"value": 2, "relation": "eq"}, "hits": hits},
            "status": 200}


def _upstream(request: httpx.Request) -> httpx.Response:
    Recorder.add("upstream", request.url.path, request.headers)
    Recorder.bodies.append((request.url.path, dict(request.url.params), request.content))
    lines = [json.loads(x) for x in request.content.splitlines() if x.strip()]
    if request.url.path == "/_msearch":
        return httpx.Response(200, json={"took": 1, "responses": [_leg_response(b) for b in lines[1::2]]})
    raise AssertionError(f"unexpected upstream request {request.url.path}")


def _endpoint(home: Path, lang: str | None) -> contextlib.AbstractContextManager[TestClient]:
    return recording_endpoint(home, _upstream, lang)


@pytest.mark.parametrize("headers", [APP, {}], ids=["app-credentials", "none"])
def test_a_reranked_search_is_one_upstream_request(tmp_path: Path, headers: dict[str, str]) -> None:
    Recorder.seen.clear()
    Recorder.bodies = []
    with _endpoint(tmp_path, "hybridrank") as client:
        response = client.post("/docs/_search", json={"query": {"match": {"title": "x"}}, "size": 2, "_source": False},
                               headers={**headers, "x-hybridrank-explain": "true"})  # our explanation only
        assert response.status_code == 200, response.text
        assert response.headers["x-hybridrank-ranker"] == "model:sum"
        hits = response.json()["hits"]["hits"]
    assert [(via, path) for via, path, _ in Recorder.seen] == [("upstream", "/_msearch")]
    assert all(sent == headers and sent.get("authorization") != CONFIGURED for _, _, sent in Recorder.seen)
    _path, params, payload = Recorder.bodies[0]
    assert params == {"include_named_queries_score": "true"}
    bodies = [json.loads(x) for x in payload.splitlines() if x.strip()][1::2]
    assert len(bodies) == 2  # the two legs, independent of each other
    for body in bodies:
        carrier = body["post_filter"]["bool"]
        assert carrier["filter"] == [{"match_all": {}}] and carrier["minimum_should_match"] == 0  # filters nothing
        should = carrier["should"]
        assert body["size"] == CONFIG.candidate_window and "rescore" not in body
        names = [c.get("script_score", {}).get("_name") or next(iter(c["match"].values()))["_name"] for c in should]
        assert names == ["bm25:title", "dense"]
        assert should[1]["script_score"]["script"]["lang"] == "hybridrank"
    features = hits[0]["_hybridrank"]["features"]
    assert features["bm25_title"] == NAMED["bm25:title"]
    assert features["dense_cosine"] == pytest.approx(2 * NAMED["dense"] - 1)


def test_without_a_vector_script_the_ranker_fetches_exact_scores_with_the_apps_credentials(tmp_path: Path) -> None:
    Recorder.seen.clear()
    Recorder.bodies = []
    with _endpoint(tmp_path, None) as client:
        response = client.post("/docs/_search", json={"query": {"match": {"title": "x"}}, "size": 2, "_source": False},
                               headers=APP)
        assert response.status_code == 200, response.text
    assert [(via, path) for via, path, _ in Recorder.seen] == [("upstream", "/_msearch"),
                                                                ("caller_client", "/_msearch")]
    assert all(sent == APP for _, _, sent in Recorder.seen)
    assert "post_filter" not in Recorder.bodies[0][2].decode()
