"""``LocalElasticsearch`` without a real server: settings, password, install into a temp dir, stopping processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from connector.node import configuration, service_user
from connector.node.launcher import LocalElasticsearch
from hybridrank.config import ClusterConfig, Settings
from hybridrank.errors import ConfigError, LauncherError
from tests.support.fake_distribution import fake_mvn, make_dist_zip

# ----------------------------------------------------------------------------------------- settings


def test_from_settings_overrides(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, cluster=ClusterConfig(port=9300, heap="2g", es_version="9.2.0", security=True))
    node = LocalElasticsearch.from_settings(settings, port=9251, name="hybridrank-test", heap="512m")
    assert node.url == "http://127.0.0.1:9251"
    assert (node.port, node.heap, node.version, node.security) == (9251, "512m", "9.2.0", True)
    assert node.node_dir == node.base / "nodes" / "hybridrank-test"
    assert node.es_home == node.base / "elasticsearch-9.2.0"
    default = LocalElasticsearch.from_settings(settings)
    assert (default.port, default.heap, default.name) == (9300, "2g", "default")


def test_from_settings_rejects_a_bad_heap_or_name(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(ConfigError, match="heap"):
        LocalElasticsearch.from_settings(settings, heap="lots")
    with pytest.raises(LauncherError, match="node name"):
        LocalElasticsearch.from_settings(settings, name="../escape")


def test_password_is_generated_once_or_taken_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_user, "ROOT_FALLBACK_HOME", tmp_path / "fallback")
    node = LocalElasticsearch(home=tmp_path, version="9.2.4", port=9252, name="sec", security=True)
    first = node.password
    assert len(first) >= 20
    assert node.password == first
    secret = node.node_dir / "elastic-password"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    configured = LocalElasticsearch(home=tmp_path, version="9.2.4", port=9252, name="sec", password="s3cret")
    assert configured.password == "s3cret"


# ------------------------------------------------------------------------------------------ install


@pytest.fixture()
def node_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalElasticsearch:
    monkeypatch.setattr(service_user, "ROOT_FALLBACK_HOME", tmp_path / "fallback")
    return LocalElasticsearch(home=tmp_path / "home", version="0.0.1-test", port=9299, name="unit")


def test_ensure_installed_downloads_unpacks_and_prepares_config(
    node_in_tmp: LocalElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_zip = tmp_path / "source.zip"
    make_dist_zip(source_zip, "0.0.1-test")
    calls = tmp_path / "mvn-calls.txt"
    fake_mvn(tmp_path / "bin", (
        "import shutil, sys\n"
        f"open({str(calls)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "out = [a.split('=', 1)[1] for a in sys.argv if a.startswith('-DoutputDirectory=')][0]\n"
        f"shutil.copy({str(source_zip)!r}, out + '/elasticsearch-0.0.1-test.zip')\n"
    ))
    dictionary = tmp_path / "hunspell"
    dictionary.mkdir()
    (dictionary / "en_US.aff").write_text("SET UTF-8\n")
    (dictionary / "en_US.dic").write_text("1\nstudy/S\n")
    monkeypatch.setenv("HYBRIDRANK_HUNSPELL_DIR", str(dictionary))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")

    es_home = node_in_tmp.ensure_installed()
    assert es_home == node_in_tmp.base / "elasticsearch-0.0.1-test"
    assert os.access(es_home / "bin" / "elasticsearch", os.X_OK)  # the exec bit survived unzip
    conf = node_in_tmp.conf_dir
    assert (conf / "jvm.options").read_text() == "-XX:+UseG1GC\n"
    assert not (conf / "elasticsearch.keystore").exists()
    assert (conf / "hunspell" / "en_US" / "en_US.dic").read_text() == "1\nstudy/S\n"
    args = calls.read_text().split()
    assert "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:0.0.1-test:zip" in args

    node_in_tmp.ensure_installed()  # idempotent: no second download
    assert len(calls.read_text().splitlines()) == 1


def test_missing_dictionary_is_a_warning_not_an_error(
    node_in_tmp: LocalElasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dist = node_in_tmp.base / "dist"
    dist.mkdir(parents=True)
    make_dist_zip(dist / "elasticsearch-0.0.1-test.zip", "0.0.1-test")  # already downloaded: no mvn needed
    monkeypatch.setattr(configuration, "HUNSPELL_SEARCH_DIRS", (tmp_path / "none",))
    monkeypatch.delenv("HYBRIDRANK_HUNSPELL_DIR", raising=False)
    node_in_tmp.ensure_installed()
    assert not (node_in_tmp.conf_dir / "hunspell").exists()
    assert any(r.levelname == "WARNING" and "hunspell-en-us" in r.message for r in caplog.records)


# --------------------------------------------------------------------------------------------- stop


def test_stop_and_status_when_nothing_runs(node_in_tmp: LocalElasticsearch) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    node_in_tmp.pidfile.parent.mkdir(parents=True)
    node_in_tmp.pidfile.write_text(str(dead.pid))  # a stale pidfile
    state = node_in_tmp.status()
    assert (state.running, state.pid, state.version) == (False, None, None)
    assert node_in_tmp.stop() is False
    assert not node_in_tmp.pidfile.exists()


def test_stop_terminates_the_process(node_in_tmp: LocalElasticsearch) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    node_in_tmp.pidfile.parent.mkdir(parents=True)
    node_in_tmp.pidfile.write_text(f"{proc.pid}\n")
    assert node_in_tmp.status().running
    assert node_in_tmp.stop(timeout_s=10) is True
    assert proc.wait(timeout=5) == -15  # SIGTERM was enough
    assert not node_in_tmp.pidfile.exists()


def test_a_running_node_is_found_on_the_port_it_was_started_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``es start --port 9333`` then ``es stop`` / ``es status`` without --port: the recorded port, not the config's."""
    monkeypatch.setattr(service_user, "ROOT_FALLBACK_HOME", tmp_path / "fallback")
    settings = Settings(home=tmp_path / "home", cluster=ClusterConfig(port=9300))
    node = LocalElasticsearch.from_settings(settings, name="unit")
    assert tmp_path in node.node_dir.parents
    proc = subprocess.Popen(["sleep", "60"])
    try:
        node.pidfile.parent.mkdir(parents=True)
        node.pidfile.write_text(f"{proc.pid}\n")
        node.portfile.write_text("9333\n")
        found = LocalElasticsearch.from_settings(settings, name="unit")
        assert found.url == "http://127.0.0.1:9333" and found.status().url == "http://127.0.0.1:9333"
        assert LocalElasticsearch.from_settings(settings, port=9301, name="unit").port == 9301  # explicit wins
        assert found.stop(timeout_s=10) is True and not found.portfile.exists()
        assert LocalElasticsearch.from_settings(settings, name="unit").port == 9300  # stopped: the config's
    finally:
        proc.kill()
        proc.wait()


def test_stop_kills_a_process_that_ignores_sigterm(node_in_tmp: LocalElasticsearch) -> None:
    code = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\ntime.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    node_in_tmp.pidfile.parent.mkdir(parents=True)
    node_in_tmp.pidfile.write_text(str(proc.pid))
    assert node_in_tmp.stop(timeout_s=0.5) is True
    assert proc.wait(timeout=5) == -9
