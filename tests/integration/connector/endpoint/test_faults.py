"""The endpoint under faults of its own: SIGKILLed mid-run, its spool's disk full, more clients than it can serve.

The first two run ``hybridrank serve`` as a child process (``tests.support.endpoint_process``) over the
suite's node; the disk is made "full" for the child alone with ``RLIMIT_FSIZE`` (every file write fails
with EFBIG, as ENOSPC would). Overload runs the endpoint in a thread with a tiny admission queue.
What every test checks in the end: each event acknowledged with 202 is in the events index exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.thread import ServerThread
from connector.events.schema import click_event_id
from hybridrank.config import AdmissionConfig, IndexConfig, Settings, load_settings
from tests.support.endpoint_process import EndpointProcess, shared_model_caches, write_config
from tests.support.event_counts import duplicates, stored_event_ids
from tests.support.fault_load import TRANSPORT_ERROR, Load
from tests.support.indices import temporary_index

PROFILE = {"candidate_window": 20, "knn_num_candidates": 50}


@pytest.fixture(scope="module")
def profiled(es: Elasticsearch, embedder: Any, shared_datasets: Path) -> Iterator[str]:
    with temporary_index(es, embedder, shared_datasets, "test-faults") as name:
        yield name


@pytest.fixture()
def events_index(es: Elasticsearch) -> Iterator[str]:
    name = f"test-fault-events-{uuid.uuid4().hex[:8]}"
    yield name
    es.options(ignore_status=404).indices.delete(index=name)


def _child(tmp_path: Path, es_url: str, events_index: str, indices: dict[str, Any] | None = None) -> EndpointProcess:
    home = tmp_path / "home"
    shared_model_caches(home, load_settings(None).home)
    config = write_config(tmp_path / "hybridrank.toml", home=home, es_url=es_url, events_index=events_index,
                          spool_dir=tmp_path / "spool", indices=indices)
    return EndpointProcess(config)


def _wait_stored(es: Elasticsearch, index: str, wanted: set[str], timeout_s: float = 90) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        counts = dict(stored_event_ids(es, index)) if es.indices.exists(index=index) else {}
        if wanted <= set(counts) or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def test_an_endpoint_killed_mid_run_stores_every_acknowledged_event_exactly_once(
        es: Elasticsearch, es_url: str, events_index: str, tmp_path: Path) -> None:
    endpoint = _child(tmp_path, es_url, events_index).start()
    try:
        with Load(lambda: endpoint.url, "no-such-index", searchers=0, click_interval_s=0.005, timeout_s=5) as load:
            while len(load.acknowledged) < 150:
                time.sleep(0.05)
            endpoint.kill()  # SIGKILL: no drain, no final flush; some acknowledged events only on disk
            killed_with = len(load.acknowledged)
            time.sleep(0.5)  # the poster meets a dead endpoint
            endpoint.start()  # same spool, same port: replays what the killed one left
            while len(load.acknowledged) < killed_with + 100:
                time.sleep(0.05)
        # the app retries some acknowledged clicks: same event id, stored once
        retried = sorted(load.acknowledged)[:20]
        assert all(e.startswith("click-") for e in retried)
        acknowledged = set(load.acknowledged)
        counts = _wait_stored(es, events_index, acknowledged)
    finally:
        endpoint.stop()
    assert acknowledged <= set(counts), f"lost {len(acknowledged - set(counts))} acknowledged events"
    assert duplicates(stored_event_ids(es, events_index)) == 0
    assert set(counts) <= load.attempted  # anything beyond the acknowledged was at least sent by the app
    assert TRANSPORT_ERROR in {a.status for a in load.clicks.snapshot()}  # the kill was seen by the app
    assert {a.status for a in load.clicks.snapshot()} <= {202, TRANSPORT_ERROR}


def test_a_full_spool_disk_refuses_events_with_503_while_searches_keep_working(
        es: Elasticsearch, es_url: str, events_index: str, profiled: str, tmp_path: Path) -> None:
    endpoint = _child(tmp_path, es_url, events_index, indices={profiled: PROFILE}).start()
    search = {"query": {"match": {"text": "cells protein expression"}}, "size": 5}
    try:
        with httpx.Client(base_url=endpoint.url, timeout=30) as app:
            assert app.post("/_hybridrank/events", json={"request_id": "before", "doc_id": "d"}).status_code == 202
            endpoint.limit_file_size(0)  # from now on every file write of the endpoint fails
            refused = [app.post("/_hybridrank/events", json={"request_id": f"full-{i}", "doc_id": "d"})
                       for i in range(5)]
            for answer in refused:
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"] == "1"
                assert answer.headers["x-elastic-product"] == "Elasticsearch"
                assert answer.json()["error"]["type"] == "spool_write_exception"
            for _ in range(5):  # reranked searches answer (their impressions wait in a bounded queue)
                found = app.post(f"/{profiled}/_search", json=search)
                assert found.status_code == 200 and found.headers["x-hybridrank-ranker"] == "hybrid"
                assert len(found.json()["hits"]["hits"]) == 5
            endpoint.limit_file_size(None)  # the disk has room again: the app's retries are accepted
            retried = [app.post("/_hybridrank/events", json={"request_id": f"full-{i}", "doc_id": "d"})
                       for i in range(5)]
            assert [r.status_code for r in retried] == [202] * 5
        wanted = {click_event_id(r, "d") for r in ["before", *(f"full-{i}" for i in range(5))]}
        counts = _wait_stored(es, events_index, wanted)
    finally:
        endpoint.stop()
    assert set(counts) == wanted and set(counts.values()) == {1}


def test_overload_is_shed_with_elasticsearchs_429_and_the_admitted_searches_answer(
        settings: Settings, embedder: Any, profiled: str) -> None:
    live = settings.model_copy(update={
        "indices": {profiled: IndexConfig(**PROFILE)},
        "admission": AdmissionConfig(max_in_flight=2, max_queued=4, queue_timeout_s=5, retry_after_s=1)})
    statuses: list[int] = []
    shed: list[httpx.Response] = []
    lock = threading.Lock()
    with ServerThread(Endpoint(live, embedder=embedder, warm_up=False)) as server:
        barrier = threading.Barrier(40)

        def client() -> None:
            with httpx.Client(timeout=30) as http:
                barrier.wait()
                for _ in range(3):
                    answer = http.post(f"{server.url}/{profiled}/_search",
                                       json={"query": {"match": {"text": "DNA repair"}}, "size": 5})
                    with lock:
                        statuses.append(answer.status_code)
                        if answer.status_code == 429:
                            shed.append(answer)

        threads = [threading.Thread(target=client) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        official = Elasticsearch(server.url, max_retries=10, retry_on_status=(429,), request_timeout=30)
        assert official.search(index=profiled, query={"match": {"text": "DNA repair"}}, size=3)["hits"]["hits"]
        metrics = httpx.get(f"{server.url}/_hybridrank/metrics").text
    assert len(statuses) == 120 and set(statuses) == {200, 429}, sorted(set(statuses))
    first = shed[0]
    assert first.headers["retry-after"] == "1" and first.headers["x-elastic-product"] == "Elasticsearch"
    assert first.json()["error"]["type"] == "es_rejected_execution_exception"
    assert 'hybridrank_requests_total{outcome="queue_full",route="admission"}' in metrics
