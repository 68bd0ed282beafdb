"""Experiments applied by the endpoint, against the real node: sticky A/B variants and team-draft interleaving.

The experiments file lives in a temporary home; the endpoint re-reads it when it changes (checked
every 0.1 s here), so the test switches from an A/B test to an interleaving one without a restart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.endpoint.thread import ServerThread
from hybridrank.config import IndexConfig, Settings
from ltr.experiments.store import Experiment, ExperimentStore, Variant
from ltr.experiments.team_draft import shared_prefix, team_draft, team_draft_multileave
from tests.support.indices import temporary_index

QUERY = {"bool": {"must": [{"match": {"text": "cells protein expression"}}]}}
WINDOW = 20


@pytest.fixture(scope="module")
def profiled(es: Elasticsearch, embedder: Any, shared_datasets: Path) -> Iterator[str]:
    with temporary_index(es, embedder, shared_datasets, "test-exp-docs") as name:
        yield name


@pytest.fixture(scope="module")
def live(settings: Settings, profiled: str, tmp_path_factory: pytest.TempPathFactory,
         es: Elasticsearch) -> Iterator[Settings]:
    feedback = settings.feedback.model_copy(update={"events_index": f"test-exp-events-{uuid.uuid4().hex[:8]}",
                                                    "flush_interval_s": 0.2})
    yield settings.model_copy(update={
        "home": tmp_path_factory.mktemp("exp-home"), "feedback": feedback,
        "indices": {profiled: IndexConfig(candidate_window=WINDOW, knn_num_candidates=50)}})
    es.options(ignore_status=404).indices.delete(index=feedback.events_index)


@pytest.fixture(scope="module")
def endpoint(live: Settings, embedder: Any) -> Iterator[ServerThread]:
    app = Endpoint(live, embedder=embedder, holder=RankerHolder(live.indices), experiments_check_s=0.1)
    with ServerThread(app) as server:
        yield server


def _search(server: ServerThread, index: str, size: int = 10, headers: dict[str, str] | None = None) -> httpx.Response:
    response = httpx.post(f"{server.url}/{index}/_search", json={"query": QUERY, "size": size},
                          headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response


def _ids(response: httpx.Response) -> list[str]:
    return [h["_id"] for h in response.json()["hits"]["hits"]]


def _impression(es: Elasticsearch, index: str, rid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if es.indices.exists(index=index):
            es.indices.refresh(index=index)
            hits = es.search(index=index, query={"term": {"request_id": rid}})["hits"]["hits"]
            if hits:
                return dict(hits[0]["_source"])
        time.sleep(0.2)
    raise AssertionError(f"no impression for {rid}")


def _wait_header(server: ServerThread, index: str, prefix: str) -> httpx.Response:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = _search(server, index)
        if response.headers.get("x-hybridrank-experiment", "").startswith(prefix):
            return response
        time.sleep(0.1)
    raise AssertionError(f"the endpoint never applied experiment {prefix}")


def test_ab_then_interleave(endpoint: ServerThread, live: Settings, profiled: str, es: Elasticsearch) -> None:
    store = ExperimentStore(live.experiments_file)
    es_order = _ids(_search(endpoint, profiled, size=WINDOW, headers={"X-Hybridrank-Variant": "es"}))
    hybrid_order = _ids(_search(endpoint, profiled, size=WINDOW, headers={"X-Hybridrank-Variant": "hybrid"}))
    direct = es.search(index=profiled, query=QUERY, size=WINDOW)
    lexical = [h["_id"] for h in direct["hits"]["hits"]]
    assert es_order[: len(lexical)] == lexical  # the "es" ranker is Elasticsearch's own order first
    assert es_order != hybrid_order

    ab = store.create(Experiment(id="exp-ab", index=profiled, mode="ab", salt="s1",
                                 variants=(Variant("control", "es"), Variant("treatment", "hybrid"))))
    users: dict[str, str] = {}
    for n in range(50):
        users.setdefault(ab.assign(f"user-{n}").name, f"user-{n}")
        if len(users) == 2:
            break
    _wait_header(endpoint, profiled, "exp-ab/")
    expected = {"control": es_order[:10], "treatment": hybrid_order[:10]}
    for variant, user in users.items():
        for _ in range(2):  # sticky
            response = _search(endpoint, profiled, headers={"X-Hybridrank-User": user})
            assert response.headers["x-hybridrank-experiment"] == f"exp-ab/{variant}"
            assert _ids(response) == expected[variant]
        impression = _impression(es, live.feedback.events_index, response.headers["x-request-id"])
        assert (impression["experiment"], impression["variant"], impression["user_id"]) == ("exp-ab", variant, user)
        assert impression["ranker"] == ("es" if variant == "control" else "hybrid")
    # an explicit variant overrides the experiment and is not counted in it
    override = _search(endpoint, profiled,
                       headers={"X-Hybridrank-User": users["control"], "X-Hybridrank-Variant": "rrf"})
    assert "x-hybridrank-experiment" not in override.headers
    assert override.headers["x-hybridrank-ranker"] == "rrf"

    store.stop("exp-ab")
    store.create(Experiment(id="exp-il", index=profiled, mode="interleave", salt="s2",
                            variants=(Variant("control", "es"), Variant("treatment", "hybrid"))))
    _wait_header(endpoint, profiled, "exp-il/")
    rid = f"il-{uuid.uuid4().hex}"
    response = _search(endpoint, profiled, headers={"X-Hybridrank-User": "bob", "X-Request-Id": rid})
    assert response.headers["x-hybridrank-experiment"] == "exp-il/interleave"
    assert response.headers["x-hybridrank-ranker"] == "interleave(es,hybrid)"
    merged, teams = team_draft(es_order, hybrid_order, seed=rid, length=WINDOW)
    assert _ids(response) == merged[:10]
    scores = [h["_score"] for h in response.json()["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 10
    impression = _impression(es, live.feedback.events_index, rid)
    assert impression["experiment"] == "exp-il" and impression["variant"] is None
    assert [h["team"] for h in impression["hits"]] == teams[:10]
    assert [h["doc_id"] for h in impression["hits"]] == merged[:10]
    shared = min(shared_prefix([es_order, hybrid_order]), 10)
    assert [h["shared"] for h in impression["hits"]] == [k < shared for k in range(10)]
    assert impression["teams"]["A"]["variant"] == "control" and impression["teams"]["B"]["ranker"] == "hybrid"
    store.stop("exp-il")


def test_multileave_three_variants(endpoint: ServerThread, live: Settings, profiled: str, es: Elasticsearch) -> None:
    """Three variants in one interleaving experiment: team-draft multileaving, one team per variant."""
    orders = {r: _ids(_search(endpoint, profiled, size=WINDOW, headers={"X-Hybridrank-Variant": r}))
              for r in ("es", "hybrid", "rrf")}
    store = ExperimentStore(live.experiments_file)
    store.create(Experiment(id="exp-ml", index=profiled, mode="interleave", salt="s3",
                            variants=(Variant("bm25", "es"), Variant("linear", "hybrid"), Variant("rrf", "rrf"))))
    try:
        _wait_header(endpoint, profiled, "exp-ml/")
        rid = f"ml-{uuid.uuid4().hex}"
        response = _search(endpoint, profiled, headers={"X-Hybridrank-User": "ann", "X-Request-Id": rid})
        assert response.headers["x-hybridrank-ranker"] == "interleave(es,hybrid,rrf)"
        merged, teams = team_draft_multileave(list(orders.values()), seed=rid, length=WINDOW)
        assert _ids(response) == merged[:10]
        impression = _impression(es, live.feedback.events_index, rid)
        assert [h["team"] for h in impression["hits"]] == teams[:10] and set(teams[:9]) == {"A", "B", "C"}
        assert {t: v["variant"] for t, v in impression["teams"].items()} == {"A": "bm25", "B": "linear", "C": "rrf"}
    finally:
        store.stop("exp-ml")
