"""``hybridrank es``: status and stop of a node that does not run, an external cluster, a bad heap."""

from __future__ import annotations

from pathlib import Path


def test_cli_status_of_a_node_that_does_not_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hybridrank.cli.main import cli

    env = {"ES_URL": None, "HYBRIDRANK_ES_URL": None, "HYBRIDRANK_HOME": str(tmp_path), "HYBRIDRANK_CONFIG": None}
    result = CliRunner(env=env).invoke(cli, ["es", "status", "--name", "unit-never-started", "--port", "9299"])
    assert result.exit_code == 1
    assert result.output.strip() == "not running: http://127.0.0.1:9299 (start it with `hybridrank es start`)"
    result = CliRunner(env=env).invoke(cli, ["es", "stop", "--name", "unit-never-started", "--port", "9299"])
    assert (result.exit_code, result.output.strip()) == (0, "not running: http://127.0.0.1:9299")


def test_cli_with_an_external_cluster_starts_nothing_but_checks_it() -> None:
    from click.testing import CliRunner

    from hybridrank.cli.main import cli

    runner = CliRunner(env={"ES_URL": "http://127.0.0.1:9", "HYBRIDRANK_ES_URL": None, "HYBRIDRANK_CONFIG": None})
    result = runner.invoke(cli, ["es", "start"])
    assert result.exit_code == 1
    assert "cannot reach Elasticsearch" in result.output
    result = runner.invoke(cli, ["es", "stop"])
    assert (result.exit_code, result.output.strip()) == (0, "an external cluster is configured "
                                                            "(http://127.0.0.1:9); nothing to stop")


def test_cli_rejects_a_bad_heap() -> None:
    from click.testing import CliRunner

    from hybridrank.cli.main import cli

    result = CliRunner().invoke(cli, ["es", "start", "--heap", "lots"])
    assert result.exit_code == 2
    assert "512m or 2g" in result.output


def test_cli_status_and_stop_act_on_every_node_of_a_recorded_cluster(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from hybridrank.cli.main import cli

    env = {"ES_URL": None, "HYBRIDRANK_ES_URL": None, "HYBRIDRANK_HOME": str(tmp_path), "HYBRIDRANK_CONFIG": None}
    (tmp_path / "clusters").mkdir()
    (tmp_path / "clusters" / "trio.json").write_text(json.dumps({"nodes": 3, "port": 9296, "heap": "256m"}))
    result = CliRunner(env=env).invoke(cli, ["es", "status", "--name", "trio"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"trio-{i}: not running (http://127.0.0.1:{9296 + i})" for i in range(3)]
    result = CliRunner(env=env).invoke(cli, ["es", "stop", "--name", "trio"])
    assert (result.exit_code, result.output.strip()) == (0, "stopped 0 of the 3 nodes of cluster 'trio'")


def test_cli_refuses_a_secured_cluster_of_several_nodes(tmp_path: Path) -> None:
    from connector.node.cluster import LocalCluster
    from hybridrank.config import ClusterConfig, Settings
    from hybridrank.errors import LauncherError

    settings = Settings(home=tmp_path, cluster=ClusterConfig(security=True))
    try:
        LocalCluster(settings, name="secure", nodes=3)
    except LauncherError as exc:
        assert "transport TLS" in str(exc)
    else:
        raise AssertionError("a secured multi-node cluster was accepted")
