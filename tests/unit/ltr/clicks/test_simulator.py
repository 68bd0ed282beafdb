"""Simulated users: the click model's rates, determinism, click posting with retries, the films writer.

The endpoint is faked at the transport: a node class for the official client's searches, an httpx
``MockTransport`` for ``POST /_hybridrank/events``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
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
from ltr.clicks.films import genre_phrase, load_films, write_films_dataset
from ltr.clicks.simulator import (
    EXAMINATION,
    FreshnessPreference,
    PositionBasedModel,
    ShownDoc,
    Simulator,
    attractiveness,
    probe_endpoint,
    session_rng,
    user_propensity,
)
from ltr.evaluation.datasets import open_folder

# -- the click model ---------------------------------------------------------------------------


def test_attractiveness_follows_design() -> None:
    assert [round(attractiveness(g), 4) for g in range(5)] == [0.1, 0.16, 0.28, 0.52, 1.0]
    assert attractiveness(7) == 1.0  # grades above 4 clip
    assert attractiveness(-1) == 0.1


@pytest.mark.parametrize("grade", [0, 2, 4])
def test_pbm_click_rates_converge_to_design(grade: int) -> None:
    model = PositionBasedModel(dwell=False)
    shown = [ShownDoc(f"d{i}", i + 1, grade) for i in range(10)]
    rng = np.random.default_rng(7)
    n = 40_000
    counts = np.zeros(10)
    for _ in range(n):
        for click in model.clicks(shown, rng):
            counts[click.position - 1] += 1
    expected = np.array(EXAMINATION) * attractiveness(grade)
    rates = counts / n
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(rates - expected) < 4 * sigma + 1e-9), (rates, expected)
    assert model.click_probability(ShownDoc("x", 11, 4)) == 0.0  # below the examined ranks


def test_freshness_preference_favours_recent_documents() -> None:
    now = datetime(2020, 1, 1, tzinfo=UTC)
    pref = FreshnessPreference(half_life_days=365, weight=0.8, as_of=now)
    assert pref.factor(now) == pytest.approx(1.0)
    assert pref.factor(now - timedelta(days=365)) == pytest.approx(0.2 + 0.8 * 0.5)
    assert pref.factor(None) == pytest.approx(0.2)  # unknown age: not seen as recent
    with pytest.raises(ValueError):
        FreshnessPreference(half_life_days=0, weight=0.5)

    fresh_model = PositionBasedModel(freshness=pref, dwell=False)
    plain = PositionBasedModel(dwell=False)
    recent = ShownDoc("new", 1, 2, now - timedelta(days=10))
    old = ShownDoc("old", 1, 2, now - timedelta(days=20 * 365))
    assert fresh_model.click_probability(recent) > fresh_model.click_probability(old)
    assert plain.click_probability(recent) == plain.click_probability(old)

    # over many sessions the recent document (shown second) out-clicks the old one (shown first)
    shown = [ShownDoc("old", 1, 2, old.timestamp), ShownDoc("new", 2, 2, recent.timestamp)]
    rng = np.random.default_rng(3)
    clicks = {"old": 0, "new": 0}
    for _ in range(20_000):
        for c in fresh_model.clicks(shown, rng):
            clicks[c.doc_id] += 1
    assert clicks["new"] > clicks["old"] * 1.5
    assert PositionBasedModel(freshness=FreshnessPreference(30, 0.0)).needs_timestamps is False


def test_user_propensity_is_fixed_per_user_with_mean_one_and_the_asked_spread() -> None:
    assert user_propensity("u0001", 0.0) == 1.0
    assert user_propensity("u0001", 1.0) == user_propensity("u0001", 1.0)  # the same person every run
    draws = np.array([user_propensity(f"u{i:05d}", 1.0) for i in range(20_000)])
    assert draws.min() > 0 and abs(draws.mean() - 1.0) < 0.03 and abs(draws.std() - 1.0) < 0.05
    # a user's propensity scales every click probability, capped at 1
    model = PositionBasedModel(propensity_sd=1.0, dwell=False)
    doc = ShownDoc("d", 1, 3)
    assert model.click_probability(doc, 2.0) == pytest.approx(2 * model.click_probability(doc))
    assert model.click_probability(ShownDoc("d", 1, 4), 5.0) == 1.0
    heavy = max((f"u{i:05d}" for i in range(200)), key=lambda u: user_propensity(u, 1.0))
    light = min((f"u{i:05d}" for i in range(200)), key=lambda u: user_propensity(u, 1.0))
    rng = np.random.default_rng(0)
    shown = [ShownDoc(f"d{i}", i + 1, 2) for i in range(10)]
    n_heavy = sum(len(model.clicks(shown, rng, heavy)) for _ in range(500))
    n_light = sum(len(model.clicks(shown, rng, light)) for _ in range(500))
    assert n_heavy > 5 * max(n_light, 1)
    with pytest.raises(ValueError):
        PositionBasedModel(propensity_sd=-1.0)


def test_dwell_is_longer_for_better_results() -> None:
    model = PositionBasedModel()
    rng = np.random.default_rng(1)
    dwell: dict[int, list[float]] = {0: [], 4: []}
    for _ in range(3000):
        for grade in (0, 4):
            for c in model.clicks([ShownDoc("d", 1, grade)], rng):
                assert c.dwell_ms is not None and c.dwell_ms > 0
                dwell[grade].append(c.dwell_ms)
    assert np.median(dwell[4]) > 2 * np.median(dwell[0])


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


# -- the films collection ----------------------------------------------------------------------


def test_genre_phrases_read_naturally() -> None:
    assert genre_phrase({"Comedy", "Romance"}) == "romantic comedy"
    assert genre_phrase({"Drama", "War"}) == "war drama"
    assert genre_phrase({"Horror", "Sci-Fi"}) == "science fiction horror film"
    assert genre_phrase(set()) == "film"


def test_films_writer_makes_a_beir_folder_that_loads(tmp_path: Path) -> None:
    stats = write_films_dataset(tmp_path / "films", limit=3000, seed=1)
    assert stats.documents == 3000
    assert stats.first_release.year >= 1940 and stats.last_release.year <= 2014
    collection = open_folder(tmp_path / "films")
    assert collection.splits() == ["test", "train"]
    test, train = collection.qrels("test"), collection.qrels("train")
    assert len(test) == stats.test_queries and len(train) == stats.train_queries
    assert not set(test) & set(train)
    docs = {d["_id"]: d for d in collection.iter_corpus()}
    assert len(docs) == 3000
    for qid, judged in test.items():
        query = collection.queries[qid]
        assert 5 <= len(judged) <= 400 and set(judged.values()) <= {1, 2, 3}
        for doc_id in judged:
            assert doc_id in docs  # every judged film is in the corpus
        # the query's genre words occur in the relevant films' descriptions
        text = docs[next(iter(judged))]["text"].lower()
        assert all(word in text for word in query.split() if word != "film"), (query, text)
    doc = next(iter(docs.values()))
    assert datetime.fromisoformat(doc["released"]).year == doc["year"]
    assert isinstance(doc["genres"], list) and doc["text"].startswith(doc["title"])
    # the same seed writes the same collection
    again = write_films_dataset(tmp_path / "again", limit=3000, seed=1)
    assert (tmp_path / "again" / "qrels" / "test.tsv").read_text() == (tmp_path / "films" / "qrels" / "test.tsv"
                                                                       ).read_text()
    assert again.queries == stats.queries


def test_full_snapshot_spans_1940_to_2014() -> None:
    films = load_films()
    assert len(films) > 17_000
    assert len({f.doc_id for f in films}) == len(films)
    assert min(f.released for f in films).year == 1940 and max(f.released for f in films).year == 2014


def test_datasets_films_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDRANK_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["datasets", "films", "--limit", "1500"])
    assert result.exit_code == 0, result.output
    assert "1500 films" in result.output and 'timestamp_field = "released"' in result.output
    assert open_folder(tmp_path / "datasets" / "films").qrels("test")
