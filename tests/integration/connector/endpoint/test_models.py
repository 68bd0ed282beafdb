"""Learned reranking through the endpoint: real LightGBM models, the real registry, live swaps.

Two tiny models are trained on synthetic rows with the live pipeline's feature names: one scores
by the BM25 feature, one by the dense cosine. Promoting one, then the other, must change the order
served without a restart and without failing concurrent searches; a corrupt model promoted over a
serving one is refused, and the serving one keeps serving, never an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.thread import ServerThread
from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig, Settings
from ltr.training.model import LIGHTGBM_FILE
from ltr.training.registry import ModelRegistry
from tests.support.indices import temporary_index
from tests.support.synthetic_models import train_synthetic

QUERY = {"bool": {"must": [{"match": {"text": "cells protein expression"}}]}}


@pytest.fixture(scope="module")
def index_name(es: Elasticsearch, embedder: Any, shared_datasets: Path) -> Iterator[str]:
    with temporary_index(es, embedder, shared_datasets, "test-serve-ltr") as name:
        yield name


def _home_with_models(settings: Settings, index_name: str, home: Path,
                      models: dict[str, str]) -> tuple[Settings, ModelRegistry]:
    """Settings serving ``index_name`` from ``home``, whose registry holds one model per
    ``{model_id: feature it scores by}`` (BM25 over [0, 40), cosine over [0, 1))."""
    config = IndexConfig(candidate_window=20, knn_num_candidates=50)
    live = settings.model_copy(update={"home": home, "indices": {index_name: config}})
    registry = ModelRegistry(home)
    pipeline = FeaturePipeline.from_config(config)
    for model_id, target in models.items():
        train_synthetic(pipeline, target, 40.0 if target.startswith("bm25") else 1.0,
                        registry.model_dir(index_name, model_id), model_id)
    return live, registry


@pytest.fixture(scope="module")
def setup(settings: Settings, index_name: str, tmp_path_factory: pytest.TempPathFactory,
          embedder: Any) -> Iterator[tuple[ServerThread, ModelRegistry]]:
    live, registry = _home_with_models(settings, index_name, tmp_path_factory.mktemp("home"), {
        "m-bm25": "bm25_text", "m-dense": "dense_cosine", "m-broken": "dense_cosine"})
    registry.promote(index_name, "m-bm25")
    endpoint = Endpoint(live, embedder=embedder)
    endpoint.holder.check_interval_s = 0.2
    with ServerThread(endpoint) as server:
        yield server, registry


def _search(server: ServerThread, index: str, **headers: str) -> httpx.Response:
    response = httpx.post(f"{server.url}/{index}/_search", json={"query": QUERY, "size": 10},
                          headers={"X-Hybridrank-Explain": "1", **headers}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _wait_for(server: ServerThread, index: str, ranker: str) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = _search(server, index)
        if response.headers.get("x-hybridrank-ranker") == ranker or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_the_serving_model_reranks_with_features_in_explain(setup: tuple[ServerThread, ModelRegistry],
                                                            index_name: str) -> None:
    server, _ = setup
    response = _wait_for(server, index_name, "model:m-bm25")
    assert response.headers["x-hybridrank-ranker"] == "model:m-bm25"
    assert "x-hybridrank-fallback" not in response.headers
    hits = response.json()["hits"]["hits"]
    info = hits[0]["_hybridrank"]
    assert info["model"] == "m-bm25" and "bm25_text" in info["features"] and "dense_cosine" in info["features"]
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)
    # the model learned "score = bm25_text": the order follows that feature
    bm25 = [h["_hybridrank"]["features"]["bm25_text"] or 0.0 for h in hits]
    assert bm25[0] >= sorted(bm25)[-2]
    assert np.corrcoef([h["_score"] for h in hits], bm25)[0, 1] > 0.8
    hybrid = _search(server, index_name, **{"X-Hybridrank-Variant": "hybrid"})
    assert hybrid.headers["x-hybridrank-ranker"] == "hybrid" and "x-hybridrank-fallback" not in hybrid.headers


def test_the_serving_models_are_loaded_before_the_endpoint_says_ready(
        settings: Settings, index_name: str, tmp_path: Path, embedder: Any) -> None:
    from ltr.experiments.store import Experiment, ExperimentStore, Variant

    live, registry = _home_with_models(settings, index_name, tmp_path,
                                       {"m-default": "bm25_text", "m-treatment": "dense_cosine"})
    registry.promote(index_name, "m-default")
    ExperimentStore(live.experiments_file).create(Experiment(
        "preload", index_name, "ab", (Variant("control", "es"), Variant("treatment", "model:m-treatment")), salt="s"))
    endpoint = Endpoint(live, embedder=embedder)
    with ServerThread(endpoint):
        loaded = endpoint.holder.describe()  # no search yet: the app's first one must not wait for a model load
    assert loaded[f"{index_name}/default"]["model"] == "m-default"
    assert loaded[f"{index_name}/model:m-treatment"]["model"] == "m-treatment"
    assert all(slot["fallback"] is None for slot in loaded.values())


def test_promotion_swaps_live_without_failing_in_flight_searches(setup: tuple[ServerThread, ModelRegistry],
                                                                 index_name: str) -> None:
    server, registry = setup
    _wait_for(server, index_name, "model:m-bm25")
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            statuses.append(httpx.post(f"{server.url}/{index_name}/_search", json={"query": QUERY},
                                       timeout=30).status_code)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        registry.promote(index_name, "m-dense")
        swapped = _wait_for(server, index_name, "model:m-dense")
    finally:
        stop.set()
        worker.join()
    assert swapped.headers["x-hybridrank-ranker"] == "model:m-dense"
    assert statuses and set(statuses) == {200}
    hits = swapped.json()["hits"]["hits"]
    dense = [h["_hybridrank"]["features"]["dense_cosine"] for h in hits]
    assert dense[0] >= sorted(dense)[-2]
    assert np.corrcoef([h["_score"] for h in hits], dense)[0, 1] > 0.8
    registry.rollback(index_name)
    assert _wait_for(server, index_name, "model:m-bm25").headers["x-hybridrank-ranker"] == "model:m-bm25"


def test_a_corrupt_model_on_hot_swap_is_refused_and_the_previous_one_keeps_serving(
        setup: tuple[ServerThread, ModelRegistry], index_name: str) -> None:
    server, registry = setup
    broken = registry.model_dir(index_name, "m-broken") / LIGHTGBM_FILE
    broken.write_text(broken.read_text()[:200])  # truncated after training: the checksum no longer matches
    assert _search(server, index_name).headers["x-hybridrank-ranker"] == "model:m-bm25"
    registry.promote(index_name, "m-broken")
    deadline = time.monotonic() + 10
    refused: dict[str, Any] = {}
    while time.monotonic() < deadline and "refused" not in refused:
        response = _search(server, index_name)  # every search answers, from the model serving until now
        assert response.headers["x-hybridrank-ranker"] == "model:m-bm25"
        assert "x-hybridrank-fallback" not in response.headers and response.json()["hits"]["hits"]
        refused = httpx.get(f"{server.url}/_hybridrank/health").json()["rankers"][f"{index_name}/default"]
        time.sleep(0.1)
    assert refused["model"] == "m-bm25"
    assert refused["refused"].startswith("model-load-failed: m-broken") and "truncated or corrupt" in refused["refused"]
    unknown = _search(server, index_name, **{"X-Hybridrank-Variant": "nope"})
    assert unknown.headers["x-hybridrank-fallback"].startswith("no-model")
    registry.rollback(index_name)
