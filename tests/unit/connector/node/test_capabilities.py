"""ClusterInfo: capabilities read from ``_nodes/plugins`` and a hunspell ``_analyze`` probe, faked at the transport."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import Elasticsearch

from connector.node.capabilities import ClusterInfo, detect, hunspell_probe_body, parse_version
from hybridrank.errors import ClusterError, ClusterUnavailable

BARE_NODE = {
    "version": "9.2.4",
    "modules": [{"name": "apm"}, {"name": "transport-netty4"}, {"name": "x-pack-core"}, {"name": "x-pack-security"}],
    "plugins": [],
}
FULL_NODE = {
    "version": "9.3.0",
    "modules": [{"name": "analysis-common"}, {"name": "rank-rrf"}, {"name": "x-pack-core"}],
    "plugins": [{"name": "analysis-icu"}],
}
HUNSPELL_MISSING = (
    400,
    {
        "error": {
            "root_cause": [{"type": "illegal_argument_exception",
                            "reason": "failed to load hunspell dictionary for locale: en_US"}],
            "type": "illegal_argument_exception",
            "reason": "failed to load hunspell dictionary for locale: en_US",
        },
        "status": 400,
    },
)
HUNSPELL_OK = (200, {"tokens": [{"token": "study", "start_offset": 0, "end_offset": 7, "position": 0}]})


class FakeNode(BaseNode):
    """Answers from ``routes`` ((method, path) -> (status, body)) and records every request."""

    routes: ClassVar[dict[tuple[str, str], tuple[int, Any]]] = {}
    requests: ClassVar[list[tuple[str, str, Any]]] = []

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        path = target.split("?", 1)[0]
        FakeNode.requests.append((method, path, json.loads(body) if body else None))
        status, payload = FakeNode.routes.get((method, path), (404, {"error": "no route", "status": 404}))
        headers_out = HttpHeaders({"content-type": "application/json", "x-elastic-product": "Elasticsearch"})
        meta = ApiResponseMeta(status=status, http_version="1.1", headers=headers_out, duration=0.0,
                               node=self.config)
        return NodeApiResponse(meta, json.dumps(payload).encode())

    def close(self) -> None:
        pass


@pytest.fixture()
def client() -> Elasticsearch:
    FakeNode.routes = {}
    FakeNode.requests = []
    return Elasticsearch("http://fake:9200", node_class=FakeNode, max_retries=0)


def _nodes(*nodes: dict) -> tuple[int, dict]:
    return 200, {"nodes": {f"n{i}": node for i, node in enumerate(nodes)}}


def test_bare_node_has_neither_english_nor_rrf(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = _nodes(BARE_NODE)
    info = detect(client)
    assert info.version == "9.2.4"
    assert info.version_tuple == (9, 2, 4)
    assert info.modules == {"apm", "transport-netty4", "x-pack-core", "x-pack-security"}
    assert info.plugins == frozenset()
    assert not info.has_english_analyzer
    assert not info.has_rrf_retriever
    assert [r[:2] for r in FakeNode.requests] == [("GET", "/_nodes/plugins")]  # GET / is never needed


def test_full_node_has_both(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = _nodes(FULL_NODE)
    info = detect(client)
    assert info.has_english_analyzer and info.has_rrf_retriever
    assert info.plugins == {"analysis-icu"}


def test_a_capability_counts_only_if_every_node_has_it(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = _nodes(FULL_NODE, BARE_NODE)
    info = detect(client)
    assert not info.has_english_analyzer
    assert info.modules == {"x-pack-core"}
    assert info.version == "9.2.4"  # the oldest node decides


def test_hunspell_probe_sends_the_filter_and_caches(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = _nodes(BARE_NODE)
    FakeNode.routes[("POST", "/_analyze")] = HUNSPELL_OK
    info = detect(client)
    assert info.has_hunspell_en_us
    assert info.has_hunspell_en_us
    analyze = [r for r in FakeNode.requests if r[1] == "/_analyze"]
    assert len(analyze) == 1  # asked once, then remembered
    assert analyze[0][2] == hunspell_probe_body()
    assert {"type": "hunspell", "locale": "en_US", "dedup": True} in analyze[0][2]["filter"]


def test_missing_dictionary_means_no_hunspell(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = _nodes(BARE_NODE)
    FakeNode.routes[("POST", "/_analyze")] = HUNSPELL_MISSING
    info = detect(client)
    assert info.has_hunspell_en_us is False
    assert "hunspell en_US: no" in info.describe()


def test_unexpected_stem_means_no_hunspell(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = _nodes(BARE_NODE)
    FakeNode.routes[("POST", "/_analyze")] = (200, {"tokens": [{"token": "studies"}]})
    assert detect(client).has_hunspell_en_us is False


def test_refusal_of_nodes_info_is_a_cluster_error(client: Elasticsearch) -> None:
    FakeNode.routes[("GET", "/_nodes/plugins")] = (
        403, {"error": {"type": "security_exception", "reason": "action [cluster:monitor/nodes/info] is unauthorized"},
              "status": 403})
    with pytest.raises(ClusterError, match="unauthorized") as excinfo:
        detect(client)
    assert excinfo.value.status == 403


def test_unreachable_cluster_is_cluster_unavailable() -> None:
    client = Elasticsearch("http://127.0.0.1:9", max_retries=0, request_timeout=2)
    with pytest.raises(ClusterUnavailable, match="hybridrank es start"):
        detect(client)


def test_info_without_client_has_no_hunspell() -> None:
    info = ClusterInfo(version="9.2.4", modules=frozenset(), plugins=frozenset())
    assert info.has_hunspell_en_us is False


@pytest.mark.parametrize(("text", "expected"), [
    ("9.2.4", (9, 2, 4)), ("9.3.0-SNAPSHOT", (9, 3, 0)), ("8.19", (8, 19, 0)), ("10", (10, 0, 0)),
])
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(text) == expected

