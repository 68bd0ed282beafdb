"""Elasticsearch dies in the middle of a simulated run: no click is lost, none is counted twice.

A second real node (its own port and data) serves a small profiled index behind the endpoint.
Simulated users search and click; the node is killed; the app keeps posting clicks (and retries
some it already posted); the node comes back; the spool replays. Count in = count stored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.thread import ServerThread
from connector.events.schema import click_event_id
from connector.node.launcher import LocalElasticsearch
from hybridrank.config import ClusterConfig, IndexConfig, Settings
from ltr.clicks.impressions import read_impressions
from ltr.clicks.simulated_users import PositionBasedModel
from ltr.clicks.simulator import Simulator
from tests.support.indices import build_index
from tests.support.own_node import own_node

OUTAGE_PORT = int(os.environ.get("HYBRIDRANK_TEST_ES_OUTAGE_PORT", "9272"))  # its own node's port
INDEX = "outage-docs"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalElasticsearch]:
    with own_node(OUTAGE_PORT, "hybridrank-outage") as es_node:
        yield es_node


def _count_clicks(client: Elasticsearch, events_index: str) -> int:
    client.indices.refresh(index=events_index)
    return int(client.count(index=events_index, query={"term": {"type": "click"}})["count"])


def test_killing_elasticsearch_mid_run_loses_and_duplicates_nothing(
        node: LocalElasticsearch, settings: Settings, embedder: Any, shared_datasets: Path, tmp_path: Path) -> None:
    client = Elasticsearch(node.url, request_timeout=30)
    client.options(ignore_status=404).indices.delete(index=INDEX)
    build_index(client, embedder, shared_datasets, INDEX)
    events_index = "outage-events"
    client.options(ignore_status=404).indices.delete(index=events_index)
    live = settings.model_copy(update={
        "home": tmp_path, "cluster": ClusterConfig(url=node.url),
        "indices": {INDEX: IndexConfig(candidate_window=20, knn_num_candidates=50)},
        "feedback": settings.feedback.model_copy(update={"events_index": events_index, "flush_interval_s": 0.2}),
    })
    queries = {"q1": "cells protein expression", "q2": "DNA repair", "q3": "vitamin D deficiency"}
    relevant: dict[str, dict[str, int]] = {q: {} for q in queries}  # unjudged: the base attractiveness clicks
    endpoint = Endpoint(live, embedder=embedder, holder=None, warm_up=False)
    posted: set[str] = set()
    with ServerThread(endpoint) as server, httpx.Client(base_url=server.url, timeout=30) as app:
        # 1. a simulated run while the node is up
        with Simulator(server.url, INDEX, queries, relevant, PositionBasedModel(), users=5, seed=7, workers=2,
                       query_fields=["title", "text"]) as sim:
            report = sim.run(30)
        assert report.searches_failed == 0 and report.clicks_lost == 0 and report.clicks_accepted > 0
        deadline = time.monotonic() + 60
        impressions: list[Any] = []
        while time.monotonic() < deadline:
            if client.indices.exists(index=events_index):
                impressions, _ = read_impressions(client, events_index, index=INDEX)
                if len(impressions) == 30 and _count_clicks(client, events_index) == report.clicks_accepted:
                    break
            time.sleep(0.5)
        assert len(impressions) == 30
        posted |= {click_event_id(i.request_id, d) for i in impressions for d in i.clicks}
        assert len(posted) == report.clicks_accepted

        # 2. the node dies; the app keeps posting clicks on what it showed, and retries old ones
        node.stop()
        during = [(i.request_id, h.doc_id) for i in impressions for h in i.hits if h.doc_id not in i.clicks][:40]
        for request_id, doc_id in during:
            answer = app.post("/_hybridrank/events", json={"type": "click", "request_id": request_id,
                                                           "doc_id": doc_id})
            assert answer.status_code == 202, answer.text  # durable in the spool, not lost
            posted.add(click_event_id(request_id, doc_id))
        retried = [(i.request_id, d) for i in impressions for d in i.clicks][:10]
        for request_id, doc_id in retried:
            assert app.post("/_hybridrank/events", json={"type": "click", "request_id": request_id,
                                                         "doc_id": doc_id}).status_code == 202
        assert endpoint.events.backlog + endpoint.events.queued > 0

        # 3. the node comes back: the spool replays everything, exactly once
        node.start(wait_s=180)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _count_clicks(client, events_index) < len(posted):
            time.sleep(1.0)
        time.sleep(2.0)  # anything still in flight would show up as a duplicate now
        assert _count_clicks(client, events_index) == len(posted)
    stored, orphans = read_impressions(client, events_index, index=INDEX)
    assert orphans == 0
    assert sum(len(i.clicks) for i in stored) == len(posted)
    client.options(ignore_status=404).indices.delete(index=[INDEX, events_index])
    client.close()
