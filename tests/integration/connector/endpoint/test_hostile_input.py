"""Hostile input, property-based: generated and mutated search bodies, query strings and headers, each sent
to the endpoint and to Elasticsearch directly (``tests.support.hostile``).

The endpoint never answers 5xx where Elasticsearch does not, never hangs, and answers with
Elasticsearch's status — for requests it relays and for those it reranks — except its documented 400
for paging beyond the rerank window. Seeded and bounded for CI (``derandomize``, a fixed number of
examples); ``bench/bench_reliability.py`` runs thousands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch
from hypothesis import HealthCheck, example, given, settings

from connector.endpoint.app import Endpoint
from connector.endpoint.thread import ServerThread
from hybridrank.config import IndexConfig, Settings
from tests.support.hostile import HostileRequest, compare, hostile_requests, rerankable
from tests.support.indices import temporary_index

ALLOWED = ("ok", "window", "es_no_answer")
CI = settings(max_examples=150, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def target(es: Elasticsearch, es_url: str, settings: Settings, embedder: Any,
           shared_datasets: Path) -> Iterator[tuple[str, str, str, httpx.Client]]:
    with temporary_index(es, embedder, shared_datasets, "test-hostile") as index:
        live = settings.model_copy(update={"indices": {index: IndexConfig(candidate_window=20,
                                                                           knn_num_candidates=50)}})
        with ServerThread(Endpoint(live, embedder=embedder, warm_up=False)) as server, \
                httpx.Client(timeout=20) as client:
            yield server.url, es_url, index, client


def example_each(requests: list[HostileRequest]) -> Any:
    def decorate(test: Any) -> Any:
        for request in reversed(requests):
            test = example(request=request)(test)
        return test
    return decorate


JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}
TEXT_QUERY = '"query":{"match":{"text":"DNA repair"}}'
# What earlier runs found (each was a 5xx or another status than Elasticsearch's), kept as regressions.
FOUND = [
    HostileRequest("POST", "/_msearch", b'{"index": 7.5}\n{' + TEXT_QUERY.encode() + b'}\n', headers=NDJSON),
    HostileRequest("POST", "/{index}/_search", b'{' + TEXT_QUERY.encode() + b'}'),  # no Content-Type: 406
    HostileRequest("POST", "/{index}/_search", b'{"explain":null,' + TEXT_QUERY.encode() + b'}', headers=JSON),
    HostileRequest("POST", "/{index}/_search", b'{"from":false,' + TEXT_QUERY.encode() + b'}', headers=JSON),
    HostileRequest("POST", "/_msearch", b'{"index":[]}\n{"ext":{"hybridrank":{"variant":"off"}}}\n', headers=NDJSON),
    HostileRequest("POST", "/{index}/_search", b'{"size":99999999999999999999999,' + TEXT_QUERY.encode() + b'}',
                   headers=JSON),
]


@CI
@given(request=hostile_requests())
@example_each(FOUND)
def test_the_endpoint_answers_hostile_requests_as_elasticsearch_does(
        target: tuple[str, str, str, httpx.Client], request: HostileRequest) -> None:
    endpoint_url, es_url, index, client = target
    verdict = compare(client, endpoint_url, es_url, index, request)
    assert verdict.verdict in ALLOWED, verdict


@CI
@given(body=rerankable)
def test_reranked_searches_with_hostile_extras_keep_elasticsearchs_status(
        target: tuple[str, str, str, httpx.Client], body: dict[str, Any]) -> None:
    """Searches the endpoint does rerank (a profiled index, query text, a page inside the window), with
    generated top-level keys beside the query: the status is still Elasticsearch's, and the plain ones
    are reranked indeed."""
    endpoint_url, es_url, index, client = target
    request = HostileRequest("POST", "/{index}/_search", json.dumps(body).encode(),
                             headers={"content-type": "application/json"})
    verdict = compare(client, endpoint_url, es_url, index, request)
    assert verdict.verdict in ALLOWED, verdict
    if set(body) == {"query", "size"}:
        assert verdict.reranked
