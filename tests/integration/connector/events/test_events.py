"""The event pipeline for real: clicks posted to the endpoint, impressions it logs, a dead cluster.

The endpoint runs in uvicorn (a thread) over a small profiled SciFact index on the real node; its
events go to a per-module events index and a spool under a temporary home.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.endpoint.thread import ServerThread, free_port
from connector.events.intake import parse_events
from connector.events.schema import EVENTS_MAPPING, click_event_id
from connector.events.spool import EventLog
from connector.retrieval.candidates import DENSE, LEXICAL, Candidate
from hybridrank.config import IndexConfig, Settings
from ltr.clicks.impressions import read_impressions
from ltr.ranking import Ranked
from tests.support.indices import temporary_index

QUERY = {"bool": {"must": [{"match": {"text": "cells protein expression"}}]}}
FEATURES = ["bm25", "knn", "knn_only"]


class LegFeatureRanker:
    """A stand-in model: features from the legs (NaN where a leg missed), scored by their sum."""

    name = "model:legs"
    blocking = False

    def rerank(self, index: str, query_text: str, query_vector: np.ndarray | None,
               candidates: Sequence[Candidate], request_time: datetime, *, credentials: Any = None) -> Ranked:
        rows = np.array([[c.leg_scores.get(LEXICAL, math.nan), c.leg_scores.get(DENSE, math.nan),
                          0.0 if c.found_by(LEXICAL) else 1.0] for c in candidates])
        scores = np.nansum(rows[:, :2], axis=1)
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i].doc_id))
        return Ranked([candidates[i] for i in order], [float(scores[i]) for i in order], ranker=self.name,
                      model_id="legs", feature_names=list(FEATURES), features=rows[order])


@pytest.fixture(scope="module")
def profiled(es: Elasticsearch, embedder: Any, shared_datasets: Path) -> Iterator[str]:
    with temporary_index(es, embedder, shared_datasets, "test-events-docs") as name:
        yield name


@pytest.fixture(scope="module")
def live(settings: Settings, profiled: str, tmp_path_factory: pytest.TempPathFactory,
         es: Elasticsearch) -> Iterator[Settings]:
    events_index = f"test-events-{uuid.uuid4().hex[:8]}"
    home = tmp_path_factory.mktemp("events-home")
    feedback = settings.feedback.model_copy(update={"events_index": events_index, "flush_interval_s": 0.2})
    yield settings.model_copy(update={"home": home, "feedback": feedback,
                                      "indices": {profiled: IndexConfig(candidate_window=20, knn_num_candidates=50)}})
    es.options(ignore_status=404).indices.delete(index=events_index)


@pytest.fixture(scope="module")
def endpoint(live: Settings, embedder: Any) -> Iterator[ServerThread]:
    holder = RankerHolder(live.indices, resolver=lambda index, variant: "legs",
                          loader=lambda index, model_id: LegFeatureRanker())
    with ServerThread(Endpoint(live, embedder=embedder, holder=holder)) as server:
        yield server


def _count(es: Elasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index, query=query or {"match_all": {}})["count"])


def _wait_for(es: Elasticsearch, index: str, query: dict[str, Any], expected: int, timeout_s: float = 20) -> int:
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        if es.indices.exists(index=index):
            count = _count(es, index, query)
            if count >= expected:
                return count
        time.sleep(0.2)
    return count


def test_clicks_posted_twice_are_stored_once(endpoint: ServerThread, live: Settings, es: Elasticsearch) -> None:
    client = Elasticsearch(endpoint.url, request_timeout=30, max_retries=0)  # as an app would post them
    clicks = [{"type": "click", "request_id": f"req-{i}", "doc_id": f"doc-{i}", "dwell_ms": 100 * i} for i in range(3)]
    body = "".join(json.dumps(c) + "\n" for c in clicks)
    first = client.perform_request("POST", "/_hybridrank/events", body=body,
                                   headers={"content-type": "application/x-ndjson", "X-Hybridrank-User": "u-7"})
    assert first.meta.status == 202 and first.body == {"accepted": 3}
    again = client.perform_request("POST", "/_hybridrank/events", body=clicks,
                                   headers={"content-type": "application/json"})
    assert again.meta.status == 202
    index = live.feedback.events_index
    ids = [click_event_id(f"req-{i}", f"doc-{i}") for i in range(3)]
    assert _wait_for(es, index, {"ids": {"values": ids}}, 3) == 3
    time.sleep(1.0)  # the re-post's flush too
    assert _count(es, index, {"ids": {"values": ids}}) == 3
    stored = es.get(index=index, id=ids[2])["_source"]
    assert stored["user_id"] == "u-7" and stored["dwell_ms"] == 200.0 and stored["type"] == "click"
    assert es.indices.get_mapping(index=index)[index]["mappings"]["properties"]["hits"] == \
        EVENTS_MAPPING["properties"]["hits"]
    metrics = httpx.get(f"{endpoint.url}/_hybridrank/metrics").text
    assert "hybridrank_events_duplicates_total 3.0" in metrics
    bad = httpx.post(f"{endpoint.url}/_hybridrank/events", content=b'{"request_id": "x"}')
    assert bad.status_code == 400
    assert bad.json()["error"]["reason"] == "event: [doc_id] is required (a non-empty string)"
    assert bad.headers["x-elastic-product"] == "Elasticsearch"
    client.close()


def test_impressions_record_what_was_shown(endpoint: ServerThread, live: Settings, profiled: str,
                                           es: Elasticsearch) -> None:
    response = httpx.post(f"{endpoint.url}/{profiled}/_search", json={"query": QUERY, "size": 5, "from": 2},
                          headers={"X-Hybridrank-User": "alice", "X-Hybridrank-Session": "s-1"}, timeout=60)
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    shown = [h["_id"] for h in response.json()["hits"]["hits"]]
    assert len(shown) == 5
    index = live.feedback.events_index
    assert _wait_for(es, index, {"term": {"request_id": rid}}, 1) == 1
    doc = es.search(index=index, query={"term": {"request_id": rid}})["hits"]["hits"][0]["_source"]
    assert doc["type"] == "impression" and doc["index"] == profiled and doc["query"] == "cells protein expression"
    assert (doc["user_id"], doc["session_id"], doc["ranker"], doc["model_id"]) == ("alice", "s-1", "model:legs", "legs")
    assert doc["experiment"] is None and doc["feature_names"] == FEATURES
    assert [h["doc_id"] for h in doc["hits"]] == shown
    assert [h["position"] for h in doc["hits"]] == [3, 4, 5, 6, 7]
    for hit in doc["hits"]:
        bm25, _knn, knn_only = hit["features"]
        assert knn_only in (0.0, 1.0) and (bm25 is None) == (knn_only == 1.0)  # NaN logged as null
        assert hit["team"] is None
    explained = httpx.post(f"{endpoint.url}/{profiled}/_search", json={"query": QUERY, "size": 5, "from": 2},
                           headers={"X-Hybridrank-Explain": "true"}, timeout=60).json()
    assert [h["_hybridrank"]["features"]["knn"] for h in explained["hits"]["hits"]] == \
        [h["features"][1] for h in doc["hits"]]
    impressions, _ = read_impressions(es, index, index=profiled)
    (mine,) = [i for i in impressions if i.request_id == rid]
    assert [h.position for h in mine.hits] == [3, 4, 5, 6, 7] and mine.user_id == "alice"


def test_msearch_items_log_one_impression_each(endpoint: ServerThread, live: Settings, profiled: str,
                                               es: Elasticsearch) -> None:
    lines = [{"index": profiled}, {"query": QUERY, "size": 3}, {"index": profiled},
             {"query": {"match": {"text": "tumor growth"}}, "size": 2}]
    response = httpx.post(f"{endpoint.url}/_msearch", content="".join(json.dumps(x) + "\n" for x in lines),
                          headers={"content-type": "application/x-ndjson", "X-Request-Id": f"ms-{uuid.uuid4().hex}"},
                          timeout=60)
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    index = live.feedback.events_index
    ids = [f"{rid}-0", f"{rid}-1"]
    assert _wait_for(es, index, {"terms": {"request_id": ids}}, 2) == 2
    found = {h["_source"]["request_id"]: h["_source"] for h in
             es.search(index=index, query={"terms": {"request_id": ids}})["hits"]["hits"]}
    for i, item in enumerate(response.json()["responses"]):
        assert [h["doc_id"] for h in found[f"{rid}-{i}"]["hits"]] == [h["_id"] for h in item["hits"]["hits"]]


def test_a_dead_cluster_loses_nothing_and_a_resend_is_not_counted_twice(
        live: Settings, es: Elasticsearch, embedder: Any, tmp_path: Path) -> None:
    index = f"test-events-down-{uuid.uuid4().hex[:8]}"
    dead_url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    down = live.model_copy(update={"home": tmp_path, "indices": {},
                                   "feedback": live.feedback.model_copy(update={"events_index": index})})
    try:
        # the endpoint accepts clicks while its cluster is down: they are durable in the spool
        with ServerThread(Endpoint(down, upstream_url=dead_url, embedder=embedder, warm_up=False)) as server:
            posted = [{"request_id": f"down-{i}", "doc_id": f"d{i}"} for i in range(40)]
            for start in range(0, 40, 10):
                answer = httpx.post(f"{server.url}/_hybridrank/events", json=posted[start:start + 10])
                assert answer.status_code == 202
            search = httpx.post(f"{server.url}/anything/_search", json={})
            assert search.status_code == 503  # searches cannot be answered; events still are
        spooled = list(tmp_path.joinpath("spool").glob("events-*.jsonl"))
        assert sum(len(p.read_bytes().splitlines()) for p in spooled) == 40
        assert not es.indices.exists(index=index)
        # the cluster is back: a new process replays the spool
        revived = EventLog.from_settings(down, url=live.cluster.url)
        assert revived.backlog == 40
        result = revived.flush_once(wait_s=30)  # the stopped endpoint's last flush may still hold the spool
        assert (result.stored, result.duplicates, result.error) == (40, 0, None)
        assert _count(es, index) == 40
        # a forced re-send (an app retrying after a lost 202) is recognised
        revived.append(parse_events(json.dumps(posted).encode()))
        again = revived.flush_once()
        assert (again.stored, again.duplicates) == (0, 40)
        assert _count(es, index) == 40 and revived.backlog == 0
        assert not list(tmp_path.joinpath("spool").glob("events-*"))
        revived.close()
    finally:
        es.options(ignore_status=404).indices.delete(index=index)
