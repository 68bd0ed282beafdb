"""The endpoint in front of a cluster with security on, configured with the superuser: it lends no identity.

Apps are the official client pointed at the endpoint, as file-realm users (``tests.support.secure_node``):
``reader`` reads ``sec-*``, ``only_a`` reads ``sec-a-*``, ``writer`` may write, ``clicker`` may add
documents to the events index, ``ops`` has ``monitor``, ``runner`` may run as ``only_a`` or
``clicker``. What the endpoint answers for another's credentials, or none, is what Elasticsearch
itself answers to them. Searches are ranked by a stand-in learned model, so the exact-score search
of the window runs too, on the app's credentials.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.endpoint.thread import ServerThread
from connector.node.launcher import LocalElasticsearch
from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig, Settings, load_settings
from ltr.ranking import LearnedRanker
from tests.support.secure_node import EVENTS_INDEX, PASSWORD, shared_secure_node
from tests.support.stand_ins import ConstantEmbedder, SumModel

INDEX_A, INDEX_B = "sec-a-docs", "sec-b-docs"
PROFILE = IndexConfig(text_fields={"title": 1.0}, embed_fields=["title"], candidate_window=10, knn_num_candidates=20)
QUERY = {"match": {"title": "protein"}}
WORDS = ("protein", "cells", "gene", "vitamin", "bone")


@pytest.fixture(scope="module")
def node(request: pytest.FixtureRequest) -> LocalElasticsearch:
    return shared_secure_node(request.config)


@pytest.fixture(scope="module")
def admin(node: LocalElasticsearch) -> Iterator[Elasticsearch]:
    client = Elasticsearch(node.url, basic_auth=(node.username, node.password), request_timeout=30)
    for index in (INDEX_A, INDEX_B):
        client.options(ignore_status=404).indices.delete(index=index)
        client.indices.create(index=index, mappings={"properties": {
            "title": {"type": "text"}, "embedding": {"type": "dense_vector", "dims": 3, "similarity": "cosine"}}})
        operations: list[dict[str, Any]] = []
        for i in range(20):
            operations += [{"index": {"_index": index, "_id": f"{index}-{i}"}},
                           {"title": f"{WORDS[i % 5]} {WORDS[(i + 1) % 5]} {i}", "embedding": [1.0, i / 20, 0.5]}]
        assert not client.bulk(operations=operations, refresh=True)["errors"]
    yield client
    for index in (INDEX_A, INDEX_B, EVENTS_INDEX):
        client.options(ignore_status=404).indices.delete(index=index)
    client.close()


@pytest.fixture(scope="module")
def endpoint(node: LocalElasticsearch, admin: Elasticsearch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = load_settings(None)
    settings: Settings = base.model_copy(update={
        # the endpoint's own identity is the superuser: it must serve its own work only
        "cluster": base.cluster.model_copy(update={"url": node.url, "username": node.username,
                                                   "password": node.password, "api_key": ""}),
        "home": tmp_path_factory.mktemp("secured-home"),
        "indices": {INDEX_A: PROFILE, INDEX_B: PROFILE},
        "feedback": base.feedback.model_copy(update={"events_index": EVENTS_INDEX, "flush_interval_s": 0.2}),
    })
    box: list[Endpoint] = []
    pipeline = FeaturePipeline.from_config(PROFILE)
    holder = RankerHolder(settings.indices, resolver=lambda index, variant: "sum",
                          loader=lambda index, model: LearnedRanker(SumModel(), pipeline, box[0].caller_client()))
    app = Endpoint(settings, embedder=ConstantEmbedder(3), holder=holder, warm_up=False)  # type: ignore[arg-type]
    box.append(app)
    with ServerThread(app) as server:
        yield server.url


def _client(url: str, user: str | None = None, password: str = PASSWORD, *,
            run_as: str | None = None) -> Elasticsearch:
    auth: dict[str, Any] = {"basic_auth": (user, password)} if user else {}
    headers = {"es-security-runas-user": run_as} if run_as else None
    return Elasticsearch(url, request_timeout=30, max_retries=0, headers=headers, **auth)


def _refusal(call: Callable[[Elasticsearch], Any], client: Elasticsearch) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(client)
    return caught.value


def _same_refusal(call: Callable[[Elasticsearch], Any], via: Elasticsearch, direct: Elasticsearch,
                  kind: type[ApiError]) -> None:
    """The endpoint refuses ``call`` exactly as Elasticsearch does (status, error body)."""
    ours, theirs = _refusal(call, via), _refusal(call, direct)
    assert isinstance(ours, kind) and isinstance(theirs, kind)
    assert ours.meta.status == theirs.meta.status and ours.body == theirs.body


def _write(client: Elasticsearch) -> Any:
    return client.index(index=INDEX_A, id="written-through-the-endpoint", document={"title": "x"}, refresh=True)


def test_no_credentials_is_elasticsearchs_401_for_search_write_and_msearch(endpoint: str, node: LocalElasticsearch,
                                                                          admin: Elasticsearch) -> None:
    via, direct = _client(endpoint), _client(node.url)
    count = admin.count(index=INDEX_A)["count"]
    _same_refusal(lambda c: c.search(index=INDEX_A, query=QUERY), via, direct, AuthenticationException)
    _same_refusal(_write, via, direct, AuthenticationException)
    _same_refusal(lambda c: c.msearch(searches=[{"index": INDEX_A}, {"query": QUERY}]), via, direct,
                  AuthenticationException)
    assert admin.count(index=INDEX_A)["count"] == count  # nothing was written as the superuser


def test_a_read_only_user_reads_reranked_but_cannot_write(endpoint: str, node: LocalElasticsearch,
                                                          admin: Elasticsearch) -> None:
    via = _client(endpoint, "reader")
    response = via.search(index=INDEX_A, query=QUERY, size=5)
    # ranked by the learned stand-in: its exact-score search ran with the reader's credentials
    assert response.meta.headers["X-Hybridrank-Ranker"] == "model:sum"
    assert "X-Hybridrank-Fallback" not in response.meta.headers
    assert len(response["hits"]["hits"]) == 5
    _same_refusal(_write, via, _client(node.url, "reader"), AuthorizationException)
    assert not admin.exists(index=INDEX_A, id="written-through-the-endpoint")
    written = _write(_client(endpoint, "writer"))  # the same write with a writer's credentials
    assert written["result"] == "created" and admin.exists(index=INDEX_A, id=written["_id"])
    admin.delete(index=INDEX_A, id=written["_id"], refresh=True)


def test_a_user_of_index_a_gets_elasticsearchs_own_403_for_index_b(endpoint: str, node: LocalElasticsearch) -> None:
    via, direct = _client(endpoint, "only_a"), _client(node.url, "only_a")
    assert via.search(index=INDEX_A, query=QUERY).meta.headers["X-Hybridrank-Ranker"] == "model:sum"
    _same_refusal(lambda c: c.search(index=INDEX_B, query=QUERY), via, direct, AuthorizationException)
    searches = [{"index": INDEX_A}, {"query": QUERY}, {"index": INDEX_B}, {"query": QUERY}]
    ours, theirs = via.msearch(searches=searches), direct.msearch(searches=searches)
    assert ours["responses"][0]["status"] == 200 and ours["responses"][0]["hits"]["hits"]
    assert ours["responses"][1] == theirs["responses"][1] and ours["responses"][1]["status"] == 403


def _basic(user: str) -> httpx.BasicAuth:
    return httpx.BasicAuth(user, PASSWORD)


def test_events_and_metrics_need_an_authenticated_caller_with_the_privilege(endpoint: str,
                                                                            admin: Elasticsearch) -> None:
    request_id = "sec-" + uuid.uuid4().hex[:8]
    click = {"request_id": request_id, "doc_id": f"{INDEX_A}-1"}
    anonymous = httpx.post(f"{endpoint}/_hybridrank/events", json=click)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"]
    assert anonymous.json()["error"]["type"] == "security_exception"
    refused = httpx.post(f"{endpoint}/_hybridrank/events", json=click, auth=_basic("reader"))
    assert refused.status_code == 403 and "create_doc" in refused.json()["error"]["reason"]
    accepted = httpx.post(f"{endpoint}/_hybridrank/events", json=click, auth=_basic("clicker"))
    assert accepted.status_code == 202
    assert httpx.get(f"{endpoint}/_hybridrank/metrics").status_code == 401
    assert httpx.get(f"{endpoint}/_hybridrank/metrics", auth=_basic("clicker")).status_code == 403
    assert httpx.get(f"{endpoint}/_hybridrank/metrics", auth=_basic("ops")).status_code == 200
    assert httpx.get(f"{endpoint}/_hybridrank/health").status_code == 200
    stored: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while not stored and time.monotonic() < deadline:  # shipped by the endpoint, on its own credentials
        if admin.indices.exists(index=EVENTS_INDEX):
            admin.indices.refresh(index=EVENTS_INDEX)
            hits = admin.search(index=EVENTS_INDEX, query={"term": {"request_id": request_id}})["hits"]["hits"]
            stored = [hit["_source"] for hit in hits]
        time.sleep(0.3)
    assert [(e["type"], e["principal"]) for e in stored] == [("click", "clicker")]
    by_principal = admin.count(index=EVENTS_INDEX, query={"term": {"principal": "clicker"}})["count"]
    assert by_principal >= 1  # mapped: a report can leave a source out


def test_the_anonymous_check_does_not_open_the_routes_to_a_wrong_password(endpoint: str) -> None:
    wrong = httpx.post(f"{endpoint}/_hybridrank/events", json={"request_id": "r", "doc_id": "d"},
                       auth=httpx.BasicAuth("clicker", "not-the-password"))
    assert wrong.status_code == 401
    assert wrong.json()["error"]["reason"] == \
        "unable to authenticate user [clicker] for REST request [/_hybridrank/events]"


def test_run_as_reaches_elasticsearch_on_every_request(endpoint: str, node: LocalElasticsearch) -> None:
    via, direct = _client(endpoint, "runner", run_as="only_a"), _client(node.url, "runner", run_as="only_a")
    response = via.search(index=INDEX_A, query=QUERY)  # runner alone reads nothing: only_a's rights apply
    assert response.meta.headers["X-Hybridrank-Ranker"] == "model:sum"  # the exact-score search too
    assert "X-Hybridrank-Fallback" not in response.meta.headers
    _same_refusal(lambda c: c.search(index=INDEX_B, query=QUERY), via, direct, AuthorizationException)
    posted = httpx.post(f"{endpoint}/_hybridrank/events", json={"request_id": "run-as", "doc_id": "d"},
                        auth=_basic("runner"), headers={"es-security-runas-user": "clicker"})
    assert posted.status_code == 202  # the privilege and the principal are clicker's
