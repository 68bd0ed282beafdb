"""Elasticsearch SIGKILLed under 20 concurrent searchers and a click poster, then started again.

The node is this module's own (``LocalElasticsearch`` on port 9281, never the suite's shared node).
While it is down every search is answered, within a second, with an Elasticsearch-shaped 503; once
it is back searches succeed again within 5 s; every click acknowledged with 202 — before, during or
after the outage — is in the events index exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.thread import ServerThread
from connector.node.launcher import LocalElasticsearch
from hybridrank.config import ClusterConfig, IndexConfig, Settings
from tests.support.event_counts import duplicates, stored_event_ids
from tests.support.fault_load import Load
from tests.support.indices import build_index
from tests.support.own_node import own_node

KILL_PORT = int(os.environ.get("HYBRIDRANK_TEST_ES_KILL_PORT", "9281"))  # its own node's port
INDEX = "killed-docs"
EVENTS = "killed-events"


@pytest.fixture(scope="module")
def node() -> Iterator[LocalElasticsearch]:
    with own_node(KILL_PORT, "hybridrank-faults-kill") as es_node:
        yield es_node


def sigkill(node: LocalElasticsearch) -> None:
    pid = node.status().pid
    assert pid is not None, "the node is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while node.status().running and time.monotonic() < deadline:
        time.sleep(0.05)


def test_searches_fail_fast_during_the_outage_and_recover_and_no_click_is_lost_or_doubled(
        node: LocalElasticsearch, settings: Settings, embedder: Any, shared_datasets: Path, tmp_path: Path) -> None:
    client = Elasticsearch(node.url, request_timeout=30)
    client.options(ignore_status=404).indices.delete(index=[INDEX, EVENTS])
    build_index(client, embedder, shared_datasets, INDEX)
    live = settings.model_copy(update={
        "home": tmp_path, "cluster": ClusterConfig(url=node.url),
        "indices": {INDEX: IndexConfig(candidate_window=20, knn_num_candidates=50)},
        "feedback": settings.feedback.model_copy(update={"events_index": EVENTS, "flush_interval_s": 0.2}),
    })
    endpoint = Endpoint(live, embedder=embedder, warm_up=False)
    with ServerThread(endpoint) as server, Load(lambda: server.url, INDEX, searchers=20, pause_s=0.02) as load:
        while sum(a.status == 200 for a in load.searches.snapshot()) < 100:  # normal traffic, warm
            time.sleep(0.1)
        killed_at = time.monotonic()
        sigkill(node)
        time.sleep(3)  # the outage (bench/bench_reliability.py keeps it down for 15 s)
        down_until = time.monotonic()
        node.start(wait_s=180)
        back_at = time.monotonic()
        time.sleep(6)  # recovery
    before = {a.status for a in load.searches.snapshot() if a.at + a.seconds < killed_at}
    assert before == {200}
    outage = [a for a in load.searches.snapshot() if killed_at + 0.2 <= a.at < down_until]
    assert len(outage) > 50
    assert {a.status for a in outage} == {503}, load.searches.by_status(killed_at + 0.2, down_until)
    assert max(a.seconds for a in outage) < 1.0  # failed fast, never hung
    assert '"type":"connect_transport_exception"' in outage[0].body and '"status":503' in outage[0].body
    after = [a for a in load.searches.snapshot() if a.at >= back_at]
    first_ok = min(a.at for a in after if a.status == 200)
    assert first_ok - back_at < 5.0
    assert {a.status for a in after if a.at >= back_at + 5.0} == {200}
    assert load.acknowledged and {a.status for a in load.clicks.snapshot()} == {202}  # the spool takes clicks
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        counts = stored_event_ids(client, EVENTS) if client.indices.exists(index=EVENTS) else {}
        if load.acknowledged <= set(counts):
            break
        time.sleep(1.0)
    counts = stored_event_ids(client, EVENTS)
    assert set(counts) == load.acknowledged and duplicates(counts) == 0
    client.options(ignore_status=404).indices.delete(index=[INDEX, EVENTS])
    client.close()
