"""The endpoint lends no identity: every request it makes for an app carries the app's credentials, or none.

The endpoint is configured with a service account (``svc``). Both of its ways to Elasticsearch are
recorded at the transport: the async upstream (legs, page, pass-through; httpx ``MockTransport``) and
the sync client the learned ranker and the impression snapshots use in worker threads (an
``elastic_transport`` node). Reranked ``_search``, ``_msearch`` and pass-through requests, with and
without the app's credentials, must show the app's headers on every recorded request and the
configured ones on none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from starlette.testclient import TestClient

from connector.client import make_client
from connector.endpoint.app import Endpoint
from connector.endpoint.serving import RankerHolder
from connector.endpoint.upstream import Upstream
from features.pipeline import FeaturePipeline
from hybridrank.config import ClusterConfig, FeedbackConfig, IndexConfig, Settings
from hybridrank.errors import ClusterUnavailable
from ltr.ranking import LearnedRanker
from tests.support.stand_ins import ConstantEmbedder, SumModel

CONFIGURED = "Basic " + base64.b64encode(b"svc:configured-secret").decode()
APP = {"authorization": "ApiKey YXBwOmtleQ==", "es-security-runas-user": "bob"}
CONFIG = IndexConfig(text_fields={"title": 1.0}, candidate_window=10, knn_num_candidates=10)


def _hit(doc_id: str, score: float) -> dict[str, Any]:
    return {"_index": "docs", "_id": doc_id, "_score": score, "_source": {"title": doc_id}}


def _ids_in(body: Any) -> list[str] | None:
    """The values of the first ``ids`` query in ``body`` (the exact-score and page searches restrict by ids)."""
    if isinstance(body, dict):
        if isinstance(body.get("ids"), dict):
            return list(body["ids"]["values"])
        values = body.values()
    elif isinstance(body, list):
        values = body
    else:
        return None
    for value in values:
        found = _ids_in(value)
        if found is not None:
            return found
    return None


def _search_response(body: dict[str, Any]) -> dict[str, Any]:
    ids = _ids_in(body)
    if ids is not None:  # exact scores of the window, or the page
        hits = [{**_hit(i, 1.0), "matched_queries": {"bm25_title": 1.0, "dense_cosine": 0.5}} for i in ids]
        return {"took": 1, "hits": {"hits": hits}, "status": 200}
    if "knn" in body:
        return {"took": 1, "timed_out": False, "hits": {"hits": [_hit("c", 0.9), _hit("b", 0.8)]}, "status": 200}
    return {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": 3, "relation": "eq"}, "hits": [_hit("a", 3.0), _hit("b", 2.0)]},
            "status": 200}


def _msearch_answer(payload: bytes) -> dict[str, Any]:
    lines = [json.loads(x) for x in payload.splitlines() if x.strip()]
    return {"took": 1, "responses": [_search_response(body) for body in lines[1::2]]}


class Recorder:
    """Every request either client sent: (which client, path, its credential headers)."""

    seen: ClassVar[list[tuple[str, str, dict[str, str]]]] = []
    bodies: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []  # (path, query parameters, body) where kept

    @classmethod
    def add(cls, via: str, path: str, headers: Any) -> None:
        lowered = {str(k).lower(): str(v) for k, v in dict(headers).items()}
        cls.seen.append((via, path, {k: v for k, v in lowered.items()
                                     if k in ("authorization", "es-security-runas-user", "cookie")}))


def _upstream(request: httpx.Request) -> httpx.Response:
    Recorder.add("upstream", request.url.path, request.headers)
    cookie = {"set-cookie": "session=svc-session; Path=/"}  # must never ride on a later request
    if request.url.path == "/_msearch":
        return httpx.Response(200, json=_msearch_answer(request.content), headers=cookie)
    if request.url.path == "/_mget":
        docs = json.loads(request.content)["docs"]
        return httpx.Response(200, json={"docs": [{"_index": d["_index"], "_id": d["_id"], "found": True,
                                                   "_source": {"title": d["_id"]}} for d in docs]})
    return httpx.Response(201, stream=httpx.ByteStream(b'{"result": "created"}'),  # relayed as a stream
                          headers={"X-elastic-product": "Elasticsearch", "content-type": "application/json", **cookie})


class RecordingNode(BaseNode):
    """The sync client's node: records each request's headers (its own config headers included, as a
    real node sends them) and answers ``_msearch`` like ``_upstream``."""

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        Recorder.add("caller_client", target.split("?")[0], {**dict(self.config.headers), **dict(headers or {})})
        meta = ApiResponseMeta(status=200, http_version="1.1", duration=0.0, node=self.config,
                               headers=HttpHeaders({"content-type": "application/json",
                                                    "x-elastic-product": "Elasticsearch"}))
        return NodeApiResponse(meta, json.dumps(_msearch_answer(body or b"")).encode())

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _endpoint(home: Path, upstream: Callable[[httpx.Request], httpx.Response] = _upstream,
              vector_script_lang: str | None = None) -> Iterator[TestClient]:
    """``vector_script_lang``: what ``connector.endpoint.leg_scoring`` would detect on the cluster."""
    # the configured identity, also as user:password@ in the URL: neither may reach a request made for an app
    settings = Settings(home=home, indices={"docs": CONFIG},
                        cluster=ClusterConfig(url="http://svc:configured-secret@127.0.0.1:9", username="svc",
                                              password="configured-secret"),
                        feedback=FeedbackConfig(log_features=True, flush_interval_s=60))
    box: list[Endpoint] = []
    pipeline = FeaturePipeline.from_config(CONFIG)
    holder = RankerHolder(settings.indices, resolver=lambda index, variant: "sum",
                          loader=lambda index, model: LearnedRanker(SumModel(), pipeline, box[0].caller_client()))
    endpoint = Endpoint(settings, embedder=ConstantEmbedder(), holder=holder, warm_up=False,  # type: ignore[arg-type]
                        upstream_transport=httpx.MockTransport(upstream),
                        caller_client_factory=lambda: make_client(settings, anonymous=True, node_class=RecordingNode))
    endpoint.vector_script_lang = vector_script_lang
    box.append(endpoint)
    with TestClient(endpoint.app, base_url="http://endpoint") as test_client:
        yield test_client  # leaving drains the impression snapshots (fetched after each response)


def _requests(client: TestClient, headers: dict[str, str]) -> None:
    search = {"query": {"match": {"title": "x"}}, "size": 2}
    learned = client.post("/docs/_search", json=search, headers=headers)
    assert learned.status_code == 200 and learned.headers["x-hybridrank-ranker"] == "model:sum"
    highlighted = client.post("/docs/_search", json={**search, "highlight": {"fields": {"title": {}}}},
                              headers={**headers, "X-Hybridrank-Variant": "hybrid"})  # snapshot after it
    assert highlighted.status_code == 200 and highlighted.headers["x-hybridrank-ranker"] == "hybrid"
    batch = b'{"index": "docs"}\n' + json.dumps(search).encode() + b"\n{}\n{}\n"
    multi = client.post("/docs/_msearch", content=batch, headers={**headers, "content-type": "application/x-ndjson"})
    assert multi.status_code == 200 and len(multi.json()["responses"]) == 2
    written = client.put("/docs/_doc/1", json={"title": "t"}, headers=headers)
    assert written.status_code == 201
    assert client.get("/_hybridrank/health").json()["upstream"] == "http://127.0.0.1:9"  # no user:password@


def test_every_request_for_an_app_carries_its_credentials_and_never_the_configured_ones(tmp_path: Path) -> None:
    for headers, expected in ((APP, APP), ({}, {})):
        Recorder.seen.clear()
        with _endpoint(tmp_path / str(len(headers))) as client:
            _requests(client, headers)
        paths = {(via, path) for via, path, _ in Recorder.seen}
        # every request kind of a reranked search's path was seen, on both clients
        assert {("upstream", "/_msearch"), ("upstream", "/_mget"), ("upstream", "/docs/_doc/1"),
                ("caller_client", "/_msearch")} <= paths
        assert sum(1 for via, _, _ in Recorder.seen if via == "caller_client") >= 3  # 2 rankings + a snapshot
        for via, path, sent in Recorder.seen:
            assert sent == expected, (via, path, sent)


def test_the_upstream_has_no_identity_of_its_own() -> None:
    asyncio.run(_upstream_requests())


async def _upstream_requests() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"responses": [{"hits": {"hits": []}}]},
                              headers={"set-cookie": "sid=1; Path=/"})

    upstream = Upstream("http://svc:secret@es:9200", transport=httpx.MockTransport(answer))
    try:
        await upstream.msearch([({"index": "i"}, {"query": {"match_all": {}}})], app_headers=[])
        await upstream.msearch([({"index": "i"}, {"query": {"match_all": {}}})],
                               app_headers=[("Authorization", "Basic YTpi")])
        response = await upstream.forward("GET", "/i/_doc/1", b"", [], None)
        await response.aclose()
    finally:
        await upstream.aclose()
    assert [r.headers.get("authorization") for r in seen] == [None, "Basic YTpi", None]
    assert all("cookie" not in r.headers for r in seen)  # no cookie jar shared between apps
    assert all(r.url.host == "es" and not r.url.userinfo for r in seen)


def test_the_fast_path_has_no_identity_or_cookies_of_its_own() -> None:
    """Without a test transport, ``_msearch`` and ``_mget`` go through aiohttp (``connector.endpoint.upstream``):
    a real loopback server sees the app's credentials or none, no cookie an answer set, no user:password@."""
    asyncio.run(_fast_path_requests())


async def _fast_path_requests() -> None:
    from aiohttp import web

    seen: list[tuple[str, str | None, str | None, str, bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("authorization"), request.headers.get("cookie"),
                     request.query_string, await request.read()))
        body = {"responses": [{"hits": {"hits": []}}]} if request.path == "/_msearch" else {"docs": []}
        response = web.json_response(body)
        response.set_cookie("sid", "1")
        return response

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    upstream = Upstream(f"http://svc:secret@127.0.0.1:{port}")
    try:
        await upstream.msearch([({"index": "i"}, {"query": {"match_all": {}}})], app_headers=[],
                               params={"include_named_queries_score": "true"})
        await upstream.msearch([({"index": "i"}, {"query": {"match_all": {}}})],
                               app_headers=[("Authorization", "Basic YTpi")])
        await upstream.mget({"docs": [{"_index": "i", "_id": "1"}]}, app_headers=[("Authorization", "Basic YTpi")])
    finally:
        await upstream.aclose()
        await runner.cleanup()
    assert [(path, auth, cookie) for path, auth, cookie, _, _ in seen] == [
        ("/_msearch", None, None), ("/_msearch", "Basic YTpi", None), ("/_mget", "Basic YTpi", None)]
    assert seen[0][3] == "include_named_queries_score=true"
    assert seen[0][4] == b'{"index":"i"}\n{"query":{"match_all":{}}}\n'


def test_an_upstream_that_does_not_answer_is_unavailable_on_the_fast_path() -> None:
    async def send() -> None:
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        upstream = Upstream(f"http://127.0.0.1:{port}", connect_timeout_s=0.5)
        try:
            await upstream.msearch([({"index": "i"}, {"query": {"match_all": {}}})])
        finally:
            await upstream.aclose()

    with pytest.raises(ClusterUnavailable, match="did not answer"):
        asyncio.run(send())
