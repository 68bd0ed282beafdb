"""Synthetic users against the real endpoint over a small real index of the films collection.

The films collection (a 150-film sample) is indexed with its profile (timestamp + numeric fields),
served by the endpoint in a thread, searched by simulated users through the official client; their
clicks go to ``POST /_hybridrank/events`` and, once the event log is flushed, every click joins the
impression the endpoint logged for the search it came from.
"""

from __future__ import annotations

import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.endpoint.thread import ServerThread
from connector.indexing.documents import read_beir
from connector.indexing.index_setup import create_index
from connector.indexing.indexer import index_documents
from hybridrank.config import FeedbackConfig, IndexConfig, Settings
from ltr.clicks.films import FILMS_PROFILE, write_films_dataset
from ltr.clicks.impressions import read_impressions
from ltr.clicks.simulated_users import FreshnessPreference, PositionBasedModel
from ltr.clicks.simulator import Simulator, probe_endpoint
from ltr.evaluation.datasets import Collection, open_folder
from ltr.experiments.store import Experiment, ExperimentStore, Variant
from tests.support.analyzers import Bare

FILMS = 150


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    folder = tmp_path_factory.mktemp("films") / "films"
    write_films_dataset(folder, limit=FILMS, seed=2, min_relevant=2, max_relevant=60)
    return open_folder(folder)


@pytest.fixture(scope="module")
def films_index(es: Elasticsearch, embedder: Any, films: Collection) -> Iterator[tuple[str, IndexConfig]]:
    profile = tomllib.loads(FILMS_PROFILE)["indices"]["films"]
    config = IndexConfig(**{**profile, "candidate_window": 20, "knn_num_candidates": 50})
    name = f"test-sim-{uuid.uuid4().hex[:8]}"
    create_index(es, name, config, dims=embedder.dimension, info=Bare())
    try:
        report = index_documents(es, name, config, embedder, read_beir(films.path), progress=False)
        assert report.indexed == FILMS and not report.failed
        yield name, config
    finally:
        es.options(ignore_status=404).indices.delete(index=name)


@pytest.fixture(scope="module")
def served(settings: Settings, embedder: Any, films_index: tuple[str, IndexConfig],
           tmp_path_factory: pytest.TempPathFactory, es: Elasticsearch) -> Iterator[tuple[ServerThread, Endpoint]]:
    name, config = films_index
    home = tmp_path_factory.mktemp("home")
    events_index = f"test-sim-events-{uuid.uuid4().hex[:8]}"
    serve_settings = settings.model_copy(update={
        "home": home, "indices": {name: config},
        "feedback": FeedbackConfig(events_index=events_index, spool_dir=home / "spool", flush_interval_s=0.2),
    })
    ExperimentStore(serve_settings.experiments_file).create(Experiment(
        id="sim-ab", index=name, mode="ab", salt="simulate",
        variants=(Variant("control", "hybrid"), Variant("treatment", "rrf"))))
    endpoint = Endpoint(serve_settings, embedder=embedder, holder=RankerHolder(serve_settings.indices))
    try:
        with ServerThread(endpoint) as server:
            yield server, endpoint
    finally:
        es.options(ignore_status=404).indices.delete(index=events_index)


def test_simulated_users_search_click_and_their_clicks_join_impressions(
        served: tuple[ServerThread, Endpoint], films_index: tuple[str, IndexConfig], films: Collection,
        es: Elasticsearch) -> None:
    server, endpoint = served
    name, config = films_index
    status = probe_endpoint(server.url, name)
    assert status.hybridrank and status.index_profiled

    queries = films.split_queries("train")
    qrels = films.qrels("train")
    model = PositionBasedModel(freshness=FreshnessPreference(3650, 0.5, as_of=datetime(2015, 1, 1, tzinfo=UTC)))
    with Simulator(server.url, name, queries, qrels, model, users=12, seed=5, workers=4,
                   query_fields=list(config.text_fields), timestamp_field=config.timestamp_field) as sim:
        report = sim.run(24)
        # the search side: the app-facing answer is the endpoint's reranked page
        one = sim.run_session(sim.plan(0))
    assert report.sessions == 24 and report.searches_ok == 24, report.search_failures
    assert report.searches_reranked == 24
    assert report.results_shown > 0 and report.clicks_posted > 0
    assert report.clicks_accepted == report.clicks_posted and report.clicks_lost == 0, report.lost_reasons
    assert sum(report.variant_searches.values()) == 24
    assert set(report.variant_searches) <= {"sim-ab/control", "sim-ab/treatment"}
    assert len(report.variant_searches) == 2  # 12 users split by the salted hash
    assert one.request_id and all(d.timestamp is not None for d in one.shown)

    # every click reaches the events index once and joins its search's impression (impressions are
    # queued once their feature snapshot, computed after the response, is done)
    deadline = time.monotonic() + 60
    while endpoint.post_response_work and time.monotonic() < deadline:
        time.sleep(0.1)
    # impressions still queued in memory go to the spool first (the endpoint's drainer may not have run
    # yet on a loaded machine: CI once saw one click shipped before its impression); the endpoint's own
    # flusher may be shipping at this moment (CI once read 2 of 25 impressions): wait for it, then ship
    endpoint.events.drain()
    flushed = endpoint.events.flush_once(wait_s=30)
    assert flushed.error is None and endpoint.events.backlog == 0, flushed
    impressions, orphans = read_impressions(es, endpoint.settings.feedback.events_index, index=name)
    assert orphans == 0
    ours = [i for i in impressions if i.user_id and i.session_id and i.session_id.startswith("s5-")]
    assert len(ours) == 25  # 24 sessions + the one replayed above
    clicks = sum(len(i.clicks) for i in ours)
    assert clicks == report.clicks_posted + len(one.clicks)
    assert {i.variant for i in ours} == {"control", "treatment"}
    positions = sorted(p for i in ours for p in i.clicked_positions)
    assert positions == sorted([*report.clicked_positions.elements(), *(c.position for c in one.clicks)])


def test_a_missing_index_fails_searches_plainly(served: tuple[ServerThread, Endpoint], films: Collection) -> None:
    server, _ = served
    with Simulator(server.url, "test-sim-missing", films.split_queries("test"), films.qrels("test"),
                   PositionBasedModel(), users=3, seed=1) as sim:
        report = sim.run(3)
    assert report.searches_failed == 3 and report.clicks_posted == 0
    assert any("404" in reason for reason in report.search_failures)
    status = probe_endpoint(server.url, "test-sim-missing")
    assert status.hybridrank and not status.index_profiled


def test_cli_simulate(served: tuple[ServerThread, Endpoint], films_index: tuple[str, IndexConfig],
                      films: Collection, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hybridrank.cli.main import cli

    server, _ = served
    name, _ = films_index
    config_file = tmp_path / "hybridrank.toml"
    config_file.write_text(FILMS_PROFILE.replace("[indices.films]", f'[indices."{name}"]'), encoding="utf-8")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(cli, [
        "--config", str(config_file), "simulate", "--index", name, "--dataset", str(films.path),
        "--sessions", "6", "--users", "3", "--endpoint", server.url, "--freshness-half-life-days", "3650",
        "--as-of", "2015-01-01", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "searches ok / failed" in result.output and "6 / 0" in result.output
    assert '"searches_ok": 6' in out.read_text()
