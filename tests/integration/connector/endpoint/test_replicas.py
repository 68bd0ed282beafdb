"""Two endpoint processes on one cluster, sharing nothing on disk: the state they must agree on is in
Elasticsearch (``[state] store = "elasticsearch"``).

- a model promoted through one replica's home (its artefact stored in the cluster) is served by both
  within the configured refresh interval: the other fetches it and checks its checksums;
- an experiment created through one is applied by both, and a user gets the same arm from each;
- a click posted to both counts once in the events index (and in the report, which reads it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.wire import EXPERIMENT_HEADER, RANKER_HEADER, REQUEST_ID_HEADER, USER_HEADER
from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig, Settings, load_settings
from ltr.experiments.store import Experiment, ExperimentStore, Variant
from ltr.training.registry import ModelRegistry
from tests.support.endpoint_process import EndpointProcess, shared_model_caches, write_config
from tests.support.event_counts import duplicates, stored_event_ids
from tests.support.indices import temporary_index
from tests.support.synthetic_models import train_synthetic

QUERY = {"bool": {"must": [{"match": {"text": "cells protein expression"}}]}}
REFRESH_S = 0.5
INDEX_SPEC = {"candidate_window": 20, "knn_num_candidates": 50}


@pytest.fixture(scope="module")
def index_name(es: Elasticsearch, embedder: Any, shared_datasets: Path) -> Iterator[str]:
    with temporary_index(es, embedder, shared_datasets, "test-replicas") as name:
        yield name


@pytest.fixture(scope="module")
def replicas(settings: Settings, index_name: str, tmp_path_factory: pytest.TempPathFactory,
             es: Elasticsearch) -> Iterator[tuple[list[EndpointProcess], list[Settings]]]:
    tag = uuid.uuid4().hex[:8]
    state = {"store": "elasticsearch", "index": f"test-state-{tag}", "models_index": f"test-models-{tag}",
             "refresh_s": REFRESH_S}
    events_index = f"test-replica-events-{tag}"
    processes, views = [], []
    for name in ("a", "b"):
        home = tmp_path_factory.mktemp(f"replica-{name}")
        shared_model_caches(home, load_settings(None).home)
        config = write_config(home / "hybridrank.toml", home=home, es_url=str(settings.cluster.url),
                              events_index=events_index, spool_dir=home / "spool",
                              indices={index_name: INDEX_SPEC}, state=state)
        processes.append(EndpointProcess(config))
        views.append(load_settings(config))
    try:
        with ThreadPoolExecutor(2) as pool:  # the two start side by side
            list(pool.map(lambda p: p.start(timeout_s=150), processes))
        yield processes, views
    finally:
        for process in processes:
            process.stop()
        es.options(ignore_status=404).indices.delete(index=[state["index"], state["models_index"], events_index])


def _search(replica: EndpointProcess, index: str, **headers: str) -> httpx.Response:
    response = httpx.post(f"{replica.url}/{index}/_search", json={"query": QUERY, "size": 10}, headers=headers,
                          timeout=30)
    assert response.status_code == 200, response.text
    return response


def _until(replica: EndpointProcess, index: str, header: str, wanted: str, **headers: str) -> float:
    """Seconds until ``replica`` answers with ``header: wanted``: the refresh interval plus loading the
    model (seconds on a loaded 2-core machine); fails after 30 s."""
    began = time.monotonic()
    while time.monotonic() - began < 30:
        if _search(replica, index, **headers).headers.get(header) == wanted:
            return time.monotonic() - began
        time.sleep(0.05)
    pytest.fail(f"{replica.url} never answered {header}: {wanted}:\n{replica.tail()}")


def test_a_promotion_through_one_replica_is_served_by_both(
        replicas: tuple[list[EndpointProcess], list[Settings]], index_name: str) -> None:
    (a, b), (view_a, view_b) = replicas
    pipeline = FeaturePipeline.from_config(IndexConfig(**INDEX_SPEC))
    registry_a = ModelRegistry.from_settings(view_a)
    train_synthetic(pipeline, "bm25_text", 40.0, registry_a.model_dir(index_name, "m-shared"), "m-shared")
    assert _search(b, index_name).headers[RANKER_HEADER] == "hybrid"  # nothing promoted yet
    registry_a.promote(index_name, "m-shared")
    waited = [_until(replica, index_name, RANKER_HEADER, "model:m-shared") for replica in (a, b)]
    assert (ModelRegistry.from_settings(view_b).model_dir(index_name, "m-shared") / "contract.json").is_file()
    print(f"promotion served by both replicas after {max(waited):.2f} s (refresh_s {REFRESH_S})")

    train_synthetic(pipeline, "dense_cosine", 1.0, registry_a.model_dir(index_name, "m-next"), "m-next")
    registry_a.promote(index_name, "m-next")
    for replica in (a, b):
        _until(replica, index_name, RANKER_HEADER, "model:m-next")
    ModelRegistry.from_settings(view_b).rollback(index_name)  # through the other replica's view
    for replica in (a, b):
        _until(replica, index_name, RANKER_HEADER, "model:m-shared")


def test_an_experiment_through_one_replica_gives_each_user_one_arm_on_both(
        replicas: tuple[list[EndpointProcess], list[Settings]], index_name: str) -> None:
    (a, b), (view_a, view_b) = replicas
    experiment = Experiment("shared-ab", index_name, "ab", (Variant("control", "es"), Variant("treatment", "rrf")),
                            salt="replicas")
    ExperimentStore.from_settings(view_a).create(experiment)
    for replica in (a, b):
        _until(replica, index_name, EXPERIMENT_HEADER, f"shared-ab/{experiment.assign('probe').name}",
               **{USER_HEADER: "probe"})
    arms: dict[str, set[str]] = {}
    for n in range(12):
        user = f"user-{n}"
        for replica in (a, b):
            answer = _search(replica, index_name, **{USER_HEADER: user})
            arms.setdefault(user, set()).add(answer.headers[EXPERIMENT_HEADER])
    assert all(len(seen) == 1 for seen in arms.values()), arms
    assert {next(iter(seen)) for seen in arms.values()} == {"shared-ab/control", "shared-ab/treatment"}
    assert all(next(iter(seen)) == f"shared-ab/{experiment.assign(user).name}" for user, seen in arms.items())
    ExperimentStore.from_settings(view_b).stop("shared-ab")
    for replica in (a, b):
        _until(replica, index_name, RANKER_HEADER, "model:m-shared", **{USER_HEADER: "probe"})


def test_clicks_posted_to_both_replicas_count_once(
        replicas: tuple[list[EndpointProcess], list[Settings]], index_name: str, es: Elasticsearch) -> None:
    (a, b), (view_a, _) = replicas
    clicks: set[tuple[str, str]] = set()
    for n, replica in enumerate((a, b, a, b)):
        response = _search(replica, index_name, **{USER_HEADER: f"clicker-{n}"})
        request_id = response.headers[REQUEST_ID_HEADER]
        doc_id = response.json()["hits"]["hits"][0]["_id"]
        for target in (a, b):  # the app retries the same click against the other replica
            answer = httpx.post(f"{target.url}/_hybridrank/events", timeout=30,
                                json={"type": "click", "request_id": request_id, "doc_id": doc_id})
            assert answer.status_code == 202, answer.text
        clicks.add((request_id, doc_id))
    events_index = view_a.feedback.events_index
    deadline = time.monotonic() + 30
    counts = stored_event_ids(es, events_index) if es.indices.exists(index=events_index) else None
    while time.monotonic() < deadline and (counts is None or len(counts) < len(clicks)):
        time.sleep(0.3)
        counts = stored_event_ids(es, events_index) if es.indices.exists(index=events_index) else None
    assert counts is not None and len(counts) == len(clicks) and duplicates(counts) == 0
