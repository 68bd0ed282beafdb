"""The node's command line, environment and hunspell lookup: pure functions, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.node.configuration import build_command, build_env, find_hunspell, transport_port_for


def test_transport_port_is_outside_the_default_range() -> None:
    for http_port in (9200, 9250, 9251, 9300, 45000, 65535):
        port = transport_port_for(http_port)
        assert not 9300 <= port <= 9399
        assert 1 <= port <= 65535
        assert port != http_port
    assert transport_port_for(9251) != transport_port_for(9252)


def _settings_of(command: list[str]) -> dict[str, str]:
    pairs = [command[i + 1] for i, arg in enumerate(command) if arg == "-E"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_build_command_single_node_loopback(tmp_path: Path) -> None:
    command = build_command(tmp_path / "es", http_port=9251, data_dir=tmp_path / "data", logs_dir=tmp_path / "logs",
                            pidfile=tmp_path / "es.pid", cluster_name="hybridrank-test")
    assert command[:4] == [str(tmp_path / "es" / "bin" / "elasticsearch"), "-d", "-p", str(tmp_path / "es.pid")]
    es_settings = _settings_of(command)
    assert es_settings["discovery.type"] == "single-node"
    assert es_settings["network.host"] == "127.0.0.1"
    assert es_settings["http.port"] == "9251"
    assert es_settings["transport.port"] == str(transport_port_for(9251))
    assert es_settings["path.data"] == str(tmp_path / "data")
    assert es_settings["path.logs"] == str(tmp_path / "logs")
    assert es_settings["cluster.routing.allocation.disk.threshold_enabled"] == "false"
    assert es_settings["xpack.security.enabled"] == "false"
    assert "xpack.security.http.ssl.enabled" not in es_settings


def test_build_command_with_security_keeps_http_plain(tmp_path: Path) -> None:
    es_settings = _settings_of(build_command(tmp_path, http_port=9252, data_dir=tmp_path, logs_dir=tmp_path,
                                             pidfile=tmp_path / "p", cluster_name="c", security=True))
    assert es_settings["xpack.security.enabled"] == "true"
    assert es_settings["xpack.security.http.ssl.enabled"] == "false"


def test_build_env_sets_es_java_home_conf_and_heap(tmp_path: Path) -> None:
    base = {"PATH": "/usr/bin", "JAVA_HOME": "/old/jdk", "ES_JAVA_OPTS": "-Xmx8g"}
    env = build_env(base, java_home=Path("/jdk25"), conf_dir=tmp_path / "config", heap="512m")
    assert env["ES_JAVA_HOME"] == "/jdk25"
    assert env["ES_PATH_CONF"] == str(tmp_path / "config")
    assert env["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m"
    assert "JAVA_HOME" not in env
    assert env["PATH"] == "/usr/bin"
    assert base["ES_JAVA_OPTS"] == "-Xmx8g"  # the caller's mapping is untouched


def test_find_hunspell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDRANK_HUNSPELL_DIR", raising=False)
    only_aff = tmp_path / "a"
    only_aff.mkdir()
    (only_aff / "en_US.aff").write_text("SET UTF-8\n")
    both = tmp_path / "b"
    both.mkdir()
    (both / "en_US.aff").write_text("SET UTF-8\n")
    (both / "en_US.dic").write_text("1\nstudy/S\n")
    assert find_hunspell(search_dirs=[only_aff, both]) == both
    assert find_hunspell(search_dirs=[only_aff]) is None
    monkeypatch.setenv("HYBRIDRANK_HUNSPELL_DIR", str(both))
    assert find_hunspell(search_dirs=[]) == both


def test_a_cluster_member_seeds_on_every_member_and_names_them_all_as_initial_masters() -> None:
    from connector.node.configuration import Discovery, build_command

    discovery = Discovery(cluster_name="hybridrank-c", members=(("c-0", 9660), ("c-1", 9661), ("c-2", 9662)))
    command = build_command(Path("/es"), http_port=9661, data_dir=Path("/d"), logs_dir=Path("/l"),
                            pidfile=Path("/p"), cluster_name="hybridrank-c", node_name="c-1", discovery=discovery)
    settings = dict(arg.split("=", 1) for arg in command if "=" in arg)
    assert "discovery.type" not in settings
    assert settings["discovery.seed_hosts"] == "127.0.0.1:29660,127.0.0.1:29661,127.0.0.1:29662"
    assert settings["cluster.initial_master_nodes"] == "c-0,c-1,c-2"
    assert (settings["node.name"], settings["cluster.name"], settings["transport.port"]) == (
        "c-1", "hybridrank-c", "29661")
