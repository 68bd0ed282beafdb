"""The simulator: sessions, determinism, click posting with retries, the endpoint probe.

The endpoint is faked at the transport: a node class for the official client's searches, an httpx
``MockTransport`` for ``POST /_hybridrank/events``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch

from connector.events.schema import click_event_id
from hybridrank.cli.main import cli
from hybridrank.errors import ClusterUnavailable, DataError
from ltr.clicks.films import write_films_dataset
from ltr.clicks.simulated_users import FreshnessPreference, PositionBasedModel
from ltr.clicks.simulator import Simulator, probe_endpoint, session_rng


def test_session_rng_depends_only_on_seed_and_session() -> None:
    a = session_rng(5, 12, 1).random(4)
    assert np.array_equal(a, session_rng(5, 12, 1).random(4))
    assert not np.array_equal(a, session_rng(5, 13, 1).random(4))
    assert not np.array_equal(a, session_rng(6, 12, 1).random(4))


# -- a fake endpoint ---------------------------------------------------------------------------

RANKING = [f"doc{i}" for i in range(10)]
QUERIES = {"q1": "cells protein", "q2": "vaccine efficacy", "q3": "gene expression"}
QRELS = {"q1": {"doc0": 2, "doc3": 1}, "q2": {"doc1": 2}, "q3": {"doc9": 1}}


class SearchNode(BaseNode):
    """Answers ``POST /<index>/_search`` like the endpoint: a fixed ranking, a request id per search."""

    requests: ClassVar[list[tuple[str, dict[str, str], dict[str, Any]]]] = []
    experiment: ClassVar[str | None] = "exp1/treatment"
    ranker: ClassVar[str | None] = "hybrid"
    lock = threading.Lock()

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        payload = json.loads(body) if body else {}
        with SearchNode.lock:
            SearchNode.requests.append((target, {k.lower(): v for k, v in (headers or {}).items()}, payload))
        user = str((headers or {}).get("X-Hybridrank-User", ""))
        out = {"content-type": "application/json", "x-elastic-product": "Elasticsearch",
               "X-Request-Id": f"rid-{(headers or {}).get('X-Hybridrank-Session')}"}
        if SearchNode.experiment:
            out["X-Hybridrank-Experiment"] = SearchNode.experiment if user.endswith(("0", "2", "4", "6", "8")) \
                else "exp1/control"
        if SearchNode.ranker:
            out["X-Hybridrank-Ranker"] = SearchNode.ranker
        hits = [{"_index": "films", "_id": d, "_score": 1.0 / (i + 1),
                 "_source": {"released": f"{2000 + i}-01-01"}} for i, d in enumerate(RANKING)]
        answer = {"took": 1, "timed_out": False, "hits": {"total": {"value": 10, "relation": "eq"}, "hits": hits}}
        meta = ApiResponseMeta(status=200, http_version="1.1", headers=HttpHeaders(out), duration=0.0,
                               node=self.config)
        return NodeApiResponse(meta, json.dumps(answer).encode())

    def close(self) -> None:
        pass


class EventsApp:
    """``POST /_hybridrank/events``: 202, or the scripted failures first (per event id)."""

    def __init__(self, failures: list[int | str] | None = None, *, per_event: bool = False) -> None:
        self.failures = failures or []
        self.per_event = per_event
        self.seen: dict[str, int] = {}
        self.accepted: list[dict[str, Any]] = []
        self.attempts = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST" and request.url.path == "/_hybridrank/events"
        event = json.loads(request.content)
        with self.lock:
            self.attempts += 1
            n = self.seen.get(event["event_id"], 0)
            self.seen[event["event_id"]] = n + 1
            if n < len(self.failures):
                failure = self.failures[n]
                if failure == "connect":
                    raise httpx.ConnectError("connection refused", request=request)
                return httpx.Response(int(failure), json={"error": "scripted"})
            self.accepted.append(event)
        return httpx.Response(202, json={"accepted": 1})


def _simulator(app: EventsApp, *, seed: int = 11, model: PositionBasedModel | None = None,
               timestamp_field: str = "") -> Simulator:
    SearchNode.requests = []
    search = Elasticsearch("http://endpoint:9280", node_class=SearchNode, max_retries=0)
    events = httpx.Client(base_url="http://endpoint:9280", transport=httpx.MockTransport(app))
    return Simulator("http://endpoint:9280", "films", QUERIES, QRELS, model or PositionBasedModel(),
                     users=7, seed=seed, workers=4, search_client=search, events_client=events,
                     timestamp_field=timestamp_field, retry_wait_s=0.0)


def _clicks(app: EventsApp) -> list[tuple[str, str]]:
    return sorted((e["request_id"], e["doc_id"]) for e in app.accepted)


def test_sessions_search_with_user_headers_and_post_their_clicks() -> None:
    app = EventsApp()
    with _simulator(app) as sim:
        report = sim.run(60)
    assert report.sessions == 60 and report.searches_ok == 60 and report.searches_failed == 0
    assert report.clicks_posted == report.clicks_accepted == len(app.accepted) > 0
    assert report.clicks_lost == 0
    assert sum(report.clicked_positions.values()) == report.clicks_posted
    assert set(report.variant_searches) == {"exp1/treatment", "exp1/control"}
    assert sum(report.variant_searches.values()) == 60
    assert report.searches_reranked == 60 and report.searches_unranked == 0
    assert 1 < report.users <= 7
    target, headers, body = SearchNode.requests[0]
    assert target == "/films/_search"
    assert headers["x-hybridrank-user"].startswith("u") and headers["x-hybridrank-session"].startswith("s11-")
    assert body["query"] == {"multi_match": {"query": body["query"]["multi_match"]["query"],
                                             "fields": ["title", "text"]}}
    assert body["size"] == 10 and body["_source"] is False
    event = app.accepted[0]
    assert event["type"] == "click" and event["request_id"].startswith("rid-s11-")
    assert event["event_id"] == click_event_id(event["request_id"], event["doc_id"])
    assert event["user_id"].startswith("u") and event["dwell_ms"] > 0


def test_same_seed_same_clicks_whatever_the_thread_timing() -> None:
    first, second, other = EventsApp(), EventsApp(), EventsApp()
    with _simulator(first, seed=3) as sim:
        a = sim.run(80)
    with _simulator(second, seed=3) as sim:
        sim.workers = 1
        b = sim.run(80)
    with _simulator(other, seed=4) as sim:
        sim.run(80)
    assert _clicks(first) == _clicks(second)
    assert a.to_dict() == b.to_dict()
    assert _clicks(first) != _clicks(other)


def test_failed_posts_are_retried_and_counted_once() -> None:
    app = EventsApp([503, "connect", 429])  # three transient failures, then accepted
    with _simulator(app) as sim:
        report = sim.run(30)
    assert report.clicks_posted > 0
    assert report.clicks_accepted == report.clicks_posted and report.clicks_lost == 0
    assert report.post_attempts == 4 * report.clicks_posted == app.attempts
    assert len(app.accepted) == report.clicks_posted  # one stored event per click


def test_clicks_that_cannot_be_posted_are_reported_lost() -> None:
    app = EventsApp([503] * 10)  # never recovers within the attempts
    with _simulator(app) as sim:
        report = sim.run(30)
    assert report.clicks_posted > 0 and report.clicks_accepted == 0
    assert report.clicks_lost == report.clicks_posted
    assert report.post_attempts == 4 * report.clicks_posted
    assert list(report.lost_reasons) == ['HTTP 503: {"error":"scripted"}']

    refused = EventsApp([404] * 10)  # a permanent refusal is not retried
    with _simulator(refused) as sim:
        report = sim.run(30)
    assert report.clicks_lost == report.clicks_posted == report.post_attempts > 0


def test_unranked_searches_are_counted() -> None:
    SearchNode.ranker, SearchNode.experiment = None, None
    try:
        with _simulator(EventsApp()) as sim:
            report = sim.run(10)
    finally:
        SearchNode.ranker, SearchNode.experiment = "hybrid", "exp1/treatment"
    assert report.searches_unranked == 10 and report.searches_reranked == 0
    assert dict(report.variant_searches) == {"(none)": 10}


def test_freshness_asks_for_the_timestamp_and_reads_it() -> None:
    model = PositionBasedModel(freshness=FreshnessPreference(3650, 1.0, as_of=datetime(2010, 1, 1, tzinfo=UTC)))
    with _simulator(EventsApp(), model=model, timestamp_field="released") as sim:
        result = sim.run_session(sim.plan(0))
    assert SearchNode.requests[0][2]["_source"] == ["released"]
    assert result.shown[3].timestamp == datetime(2003, 1, 1, tzinfo=UTC)


def test_no_queries_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no queries"):
        Simulator("http://x", "i", {}, {}, PositionBasedModel())


def test_probe_endpoint() -> None:
    def health(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"upstream": "http://es", "profiles": ["films"], "rankers": {}})

    status = probe_endpoint("http://e/", "films", client=httpx.Client(transport=httpx.MockTransport(health)))
    assert status.hybridrank and status.index_profiled and status.profiles == ("films",)
    assert not probe_endpoint("http://e", "other",
                              client=httpx.Client(transport=httpx.MockTransport(health))).index_profiled

    def plain_es(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "no handler"})

    assert not probe_endpoint("http://e", "films", client=httpx.Client(transport=httpx.MockTransport(plain_es))
                              ).hybridrank

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ClusterUnavailable, match="not reachable"):
        probe_endpoint("http://e", "films", client=httpx.Client(transport=httpx.MockTransport(down)))


def test_cli_says_the_endpoint_is_not_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_films_dataset(tmp_path / "films", limit=800)
    monkeypatch.setenv("HYBRIDRANK_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["simulate", "--index", "films", "--dataset", str(tmp_path / "films"),
                                      "--endpoint", "http://127.0.0.1:9", "--sessions", "2"])
    assert result.exit_code == 1
    assert "not reachable" in result.output and "hybridrank serve" in result.output
