"""A managed node with security on: requests without credentials get 401, our client with them works."""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request

import pytest

from connector.client import make_client, translate_errors
from connector.node.capabilities import detect
from connector.node.launcher import LocalElasticsearch
from hybridrank.config import Settings, load_settings
from hybridrank.errors import ClusterError
from tests.support.secure_node import SECURE_PORT, shared_secure_node


@pytest.fixture(scope="module")
def secure_node(request: pytest.FixtureRequest) -> LocalElasticsearch:
    return shared_secure_node(request.config)


def _settings_for(node: LocalElasticsearch, *, username: str = "", password: str = "") -> Settings:
    base = load_settings(None)
    cluster = base.cluster.model_copy(update={"url": node.url, "username": username, "password": password,
                                              "api_key": ""})
    return base.model_copy(update={"cluster": cluster})


def _status_of(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_security_is_on(secure_node: LocalElasticsearch) -> None:
    url = secure_node.url + "/_cluster/health"
    assert _status_of(url) == 401
    assert _status_of(url, ("elastic", "wrong-password")) == 401
    assert _status_of(url, (secure_node.username, secure_node.password)) == 200
    assert secure_node.status().version is not None  # the launcher itself authenticates


def test_our_client_passes_credentials(secure_node: LocalElasticsearch) -> None:
    client = make_client(_settings_for(secure_node, username=secure_node.username, password=secure_node.password))
    info = detect(client)
    assert info.version == secure_node.version
    assert "x-pack-security" in info.modules
    client.close()


def test_our_client_without_credentials_gets_a_401_cluster_error(secure_node: LocalElasticsearch) -> None:
    client = make_client(_settings_for(secure_node))
    with pytest.raises(ClusterError) as excinfo, translate_errors():
        client.cluster.health()
    assert excinfo.value.status == 401
    client.close()


def test_stop_frees_the_port(secure_node: LocalElasticsearch) -> None:
    # the shared node's next user starts it again
    assert secure_node.stop(timeout_s=30) is True
    assert not secure_node.status().running
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", SECURE_PORT)) != 0
    assert secure_node.stop() is False
