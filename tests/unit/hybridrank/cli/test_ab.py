"""``hybridrank ab``: experiment creation, variant syntax, stop, and plain error messages (no ES needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hybridrank.cli.main import cli
from ltr.experiments.store import ExperimentStore
from ltr.training.registry import ModelRegistry
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import NAMES, synthetic_log

ENV = {"ES_URL": None, "HYBRIDRANK_ES_URL": None, "HYBRIDRANK_HOME": None, "HYBRIDRANK_CONFIG": None}


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hybridrank.toml"
    # a URL where nothing listens: status must still list experiments; index "docs" has the feature set
    # of test_model_contract's synthetic model, which is m1 in the registry
    features = ", ".join(f'"{n}"' for n in NAMES)
    path.write_text(f'home = "{tmp_path / "home"}"\n[cluster]\nurl = "http://127.0.0.1:9"\n'
                    f'[indices.docs]\nfeatures = [{features}]\n', encoding="utf-8")
    train_model(synthetic_log(), ModelRegistry(tmp_path / "home").model_dir("docs", "m1"),
                config=TrainConfig(num_boost_round=20))
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner(env=ENV).invoke(cli, ["--config", str(config), "ab", *args])


def test_create_status_stop(config: Path, tmp_path: Path) -> None:
    r = _run(config, "create", "exp1", "--index", "docs", "--variant", "A=hybrid", "--variant", "B=model:m1:0.5",
             "--salt", "pepper", "--description", "first try")
    assert r.exit_code == 0, r.output
    assert "experiment exp1 running on index docs" in r.output
    assert "compiled for the endpoint" in r.output  # before the endpoint serves it
    exp = ExperimentStore(tmp_path / "home" / "experiments.json").get("exp1")
    assert exp.salt == "pepper" and [v.ranker for v in exp.variants] == ["hybrid", "model:m1"]
    assert exp.description == "first try" and exp.running

    again = _run(config, "create", "exp2", "--index", "docs", "--variant", "A=hybrid", "--variant", "B=rrf")
    assert again.exit_code == 2 and "already running on index 'docs'" in again.output

    status = _run(config, "status", "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["experiments"][0]["id"] == "exp1" and data["experiments"][0]["traffic"]["impressions"] == 0
    assert data["warning"] and "traffic unknown" in data["warning"]
    table = _run(config, "status")
    assert table.exit_code == 0 and "exp1" in table.output and "traffic unknown" in table.output

    stopped = _run(config, "stop", "exp1")
    assert stopped.exit_code == 0 and "experiment exp1 stopped" in stopped.output
    assert not ExperimentStore(tmp_path / "home" / "experiments.json").get("exp1").running
    assert "already stopped" in _run(config, "stop", "exp1").output


def test_errors_are_plain_messages(config: Path) -> None:
    r = _run(config, "create", "x", "--index", "docs", "--variant", "A=bm25", "--variant", "B=rrf")
    assert r.exit_code == 2 and "is not one of es, hybrid, rrf" in r.output and "Traceback" not in r.output
    r = _run(config, "create", "x", "--index", "docs", "--variant", "A=hybrid:1", "--variant", "B=rrf")
    assert r.exit_code == 2 and "Invalid value for --variant" in r.output and "nothing is left for B" in r.output
    r = _run(config, "create", "x", "--index", "docs", "--variant", "A=hybrid")
    assert r.exit_code == 2 and "at least two" in r.output
    # a variant no model can serve is refused, not left to the endpoint's hybrid fallback
    r = _run(config, "create", "x", "--index", "docs", "--variant", "A=hybrid", "--variant", "B=model:m404")
    assert r.exit_code == 2 and "index 'docs' has no model 'm404'" in r.output, r.output
    r = _run(config, "create", "x", "--index", "docs", "--variant", "A=hybrid", "--variant", "B=variant:canary")
    assert r.exit_code == 2 and "no model serves index 'docs' variant 'canary'" in r.output, r.output
    r = _run(config, "create", "x", "--index", "other", "--variant", "A=hybrid", "--variant", "B=model:m1")
    assert r.exit_code == 2 and "index 'other' has no model 'm1'" in r.output, r.output
    changed = config.parent / "changed.toml"  # the live features no longer match the model's contract
    changed.write_text(config.read_text().replace('"rank_knn"', '"rank_bm25"'), encoding="utf-8")
    r = _run(changed, "create", "x", "--index", "docs", "--variant", "A=hybrid", "--variant", "B=model:m1")
    assert r.exit_code == 1 and "rank_knn" in r.output and "Traceback" not in r.output, r.output
    bogus = config.parent / "bogus.toml"  # the config names a feature that does not exist: a config error
    bogus.write_text(config.read_text() + '[indices.bad]\nfeatures = ["bogus"]\n', encoding="utf-8")
    ModelRegistry(config.parent / "home").model_dir("bad", "m1").mkdir(parents=True)
    r = _run(bogus, "create", "x", "--index", "bad", "--variant", "A=hybrid", "--variant", "B=model:m1")
    assert r.exit_code == 2 and "config: unknown feature 'bogus'" in r.output, r.output
    assert not ExperimentStore(config.parent / "home" / "experiments.json").all()
    for args in (("stop", "nope"), ("status", "nope"), ("report", "nope")):
        r = _run(config, *args)
        assert r.exit_code == 1 and "no experiment 'nope'" in r.output, r.output
