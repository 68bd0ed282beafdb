"""The managed local node, for real: it runs, answers, is idempotent, stems English, refuses a taken port.

With ``ES_URL`` unset these tests look at the node the suite itself started (conftest ``es_url``);
with ``ES_URL`` set they start a node of their own on another port and stop it afterwards.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from connector.client import make_client
from connector.node.capabilities import detect
from connector.node.launcher import LocalElasticsearch
from hybridrank.cli.main import cli
from hybridrank.config import load_settings
from hybridrank.errors import LauncherError

TEST_PORT = int(os.environ.get("HYBRIDRANK_TEST_ES_PORT", "9251"))  # as in conftest.py
OWN_PORT = int(os.environ.get("HYBRIDRANK_TEST_ES_OWN_PORT", "9253"))


@pytest.fixture(scope="module")
def node(es_url: str) -> Iterator[LocalElasticsearch]:
    base = load_settings(None)
    suite_node = LocalElasticsearch.from_settings(base, port=TEST_PORT, name="hybridrank-test")
    if es_url == suite_node.url and suite_node.status().running:
        yield suite_node  # the suite's own node: do not stop it here
        return
    own = LocalElasticsearch.from_settings(base, port=OWN_PORT, name="hybridrank-lifecycle", heap="512m")
    own.start(wait_s=180)
    try:
        yield own
    finally:
        own.stop()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_node_runs_and_answers(node: LocalElasticsearch) -> None:
    state = node.status()
    assert state.running and state.pid is not None
    assert state.version == load_settings(None).cluster.es_version
    health = _get(node.url + "/_cluster/health")
    assert health["status"] in ("green", "yellow")
    assert health["cluster_name"] == node.cluster_name
    local = _get(node.url + "/_nodes/_local/settings?filter_path=nodes.*.settings")
    node_settings = next(iter(local["nodes"].values()))["settings"]
    assert node_settings["network"]["host"] == "127.0.0.1"
    assert node_settings["discovery"]["type"] == "single-node"
    assert node_settings["cluster"]["routing"]["allocation"]["disk"]["threshold_enabled"] == "false"
    assert node.node_dir.is_dir() and (node.node_dir / "data").is_dir()


def test_start_again_is_a_no_op(node: LocalElasticsearch) -> None:
    pid = node.status().pid
    again = LocalElasticsearch.from_settings(load_settings(None), port=node.port, name=node.name)
    state = again.start(wait_s=30)
    assert state.pid == pid
    assert again.last_start_s is None  # nothing was launched


def test_a_taken_port_is_refused_with_a_clear_error(node: LocalElasticsearch) -> None:
    intruder = LocalElasticsearch.from_settings(load_settings(None), port=node.port, name="hybridrank-intruder")
    with pytest.raises(LauncherError, match=rf"port {node.port} on 127.0.0.1 is taken"):
        intruder.start(wait_s=10)
    assert not intruder.status().running


def test_hunspell_english_stemming_is_installed(node: LocalElasticsearch) -> None:
    settings = load_settings(None)
    client = make_client(settings, url=node.url)
    info = detect(client)
    assert info.version == settings.cluster.es_version
    assert info.has_hunspell_en_us, "hunspell en_US missing: install the `hunspell-en-us` package"
    body = {"tokenizer": "standard", "filter": ["lowercase", {"type": "hunspell", "locale": "en_US", "dedup": True}],
            "text": "Studies of flies"}
    tokens = [t["token"] for t in client.indices.analyze(body=body)["tokens"]]
    assert tokens == ["study", "of", "fly"]
    client.close()


def test_cli_status_reports_the_node(node: LocalElasticsearch) -> None:
    env = {"ES_URL": None, "HYBRIDRANK_ES_URL": None}
    result = CliRunner(env=env).invoke(cli, ["es", "status", "--port", str(node.port), "--name", node.name])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"running at {node.url} (pid {node.status().pid}): Elasticsearch ")
    assert "hunspell en_US: yes" in result.output
