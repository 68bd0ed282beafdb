"""A caller's credentials: taken from its headers, sent exactly, never mixed with the configured ones."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse

from connector.client import make_client
from connector.credentials import NO_CREDENTIALS, Credentials, on_behalf_of, without_userinfo
from hybridrank.config import ClusterConfig, Settings


class HeadersNode(BaseNode):
    """Records the headers each request leaves with (the node's own included, as a real node sends them)."""

    sent: ClassVar[list[dict[str, str]]] = []

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        request_timeout: Any = None) -> NodeApiResponse:
        merged = {**dict(self.config.headers), **dict(headers or {})}
        HeadersNode.sent.append({str(k).lower(): str(v) for k, v in merged.items()})
        meta = ApiResponseMeta(status=200, http_version="1.1", duration=0.0, node=self.config,
                               headers=HttpHeaders({"content-type": "application/json",
                                                    "x-elastic-product": "Elasticsearch"}))
        return NodeApiResponse(meta, json.dumps({"count": 0}).encode())

    def close(self) -> None:
        pass


SERVICE = Settings(cluster=ClusterConfig(url="http://svc:secret@127.0.0.1:9", username="svc", password="secret"))


def test_credentials_are_the_auth_headers_of_a_request_in_a_fixed_order() -> None:
    creds = Credentials.of([("X-Opaque-Id", "o"), ("ES-Security-RunAs-User", "bob"), ("Authorization", "Basic a"),
                            ("authorization", "Basic second"), ("Cookie", "c")])
    assert creds.headers == (("authorization", "Basic a"), ("es-security-runas-user", "bob"))
    assert not creds.anonymous and Credentials.of([("accept", "x")]) == NO_CREDENTIALS and NO_CREDENTIALS.anonymous
    assert "Basic a" not in repr(creds) and creds.digest() != NO_CREDENTIALS.digest()
    assert creds.digest() == Credentials.of([("authorization", "Basic a"), ("es-security-runas-user", "bob")]).digest()


def test_an_anonymous_client_sends_the_callers_credentials_or_none() -> None:
    HeadersNode.sent.clear()
    client = make_client(SERVICE, anonymous=True, node_class=HeadersNode)
    on_behalf_of(client, Credentials.of([("authorization", "ApiKey app")])).count(index="i")
    on_behalf_of(client, NO_CREDENTIALS).count(index="i")
    assert [sent.get("authorization") for sent in HeadersNode.sent] == ["ApiKey app", None]
    # a caller's view is kept (building one costs ~0.5 ms), and only ever serves the same credentials
    app = Credentials.of([("authorization", "ApiKey app")])
    assert on_behalf_of(client, app) is on_behalf_of(client, Credentials.of([("Authorization", "ApiKey app")]))
    assert on_behalf_of(client, app) is not on_behalf_of(client, Credentials.of([("authorization", "ApiKey other")]))


def test_a_client_with_its_own_credentials_cannot_act_for_a_caller() -> None:
    HeadersNode.sent.clear()
    configured = make_client(SERVICE, node_class=HeadersNode)
    configured.count(index="i")  # the endpoint's own work: the configured identity
    assert HeadersNode.sent[0]["authorization"].startswith("Basic ")
    with pytest.raises(ValueError, match="credentials of its own"):
        on_behalf_of(configured, NO_CREDENTIALS)


@pytest.mark.parametrize(("url", "bare"), [
    ("http://u:p@es:9200/prefix", "http://es:9200/prefix"),
    ("https://u@[::1]:9200", "https://[::1]:9200"),
    ("http://es:9200", "http://es:9200"),
])
def test_urls_lose_their_userinfo(url: str, bare: str) -> None:
    assert without_userinfo(url) == bare


def test_the_endpoint_builds_clients_without_the_configured_credentials() -> None:
    """Read from the source: every client the endpoint builds itself acts for apps, so each is anonymous
    (its own work, shipping events, builds its client in ``connector.events``)."""
    endpoint = Path(__file__).resolve().parents[3] / "connector" / "endpoint"
    calls = [(path.name, node) for path in sorted(endpoint.glob("*.py"))
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and _called(node) == "make_client"]
    assert calls  # the caller client is built here
    for name, call in calls:
        anonymous = [kw for kw in call.keywords if kw.arg == "anonymous"]
        assert anonymous and isinstance(anonymous[0].value, ast.Constant) and anonymous[0].value.value is True, name


def _called(call: ast.Call) -> str | None:
    return getattr(call.func, "id", getattr(call.func, "attr", None))
