"""``hybridrank models``: the promotion gate's options and messages, and its decisions in ``models show``/``list``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybridrank.cli.main import cli
from ltr.training.registry import ModelRegistry
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import NAMES, synthetic_log


def test_promote_and_train_help_describe_the_gate() -> None:
    for command in (["models", "promote", "--help"], ["train", "--help"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0, result.output
        for option in ("--held-out-collection", "--held-out-split", "--held-out-qrels", "--held-out-clicks",
                       "--force"):
            assert option in result.output, (command, option)
        assert "best baseline" in result.output and "one-sided" in result.output


def test_promote_is_refused_without_held_out_judgments_and_force_says_so_loudly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDRANK_HOME", raising=False)  # the config's private home, not the environment's
    config = tmp_path / "hybridrank.toml"
    config.write_text(f'home = "{tmp_path / "home"}"\ncompile_models = false\n\n'
                      f"[indices.idx]\nfeatures = {json.dumps(NAMES)}\n", encoding="utf-8")
    registry = ModelRegistry(tmp_path / "home")
    model_id = train_model(synthetic_log(), None, config=TrainConfig(num_boost_round=20),
                           model_store=lambda mid: registry.model_dir("idx", mid)).contract.model_id
    runner = CliRunner()
    base = ["--config", str(config), "models"]

    refused = runner.invoke(cli, [*base, "promote", model_id, "--index", "idx"])
    assert refused.exit_code == 1, refused.output
    assert "gate refused (no held-out judgments)" in refused.output and "--force" in refused.output
    assert registry.serving("idx") is None

    clash = runner.invoke(cli, [*base, "promote", model_id, "--index", "idx", "--held-out-clicks",
                                "--held-out-collection", str(tmp_path)])
    assert clash.exit_code == 2 and "--held-out-clicks judges on clicks" in clash.output

    pushed = runner.invoke(cli, [*base, "promote", model_id, "--index", "idx", "--force"])
    assert pushed.exit_code == 0, pushed.output
    assert "WARNING: promoted by --force against the promotion gate" in pushed.output
    assert f"idx/default: now serving {model_id}" in pushed.output
    assert registry.serving("idx") == model_id

    shown = runner.invoke(cli, [*base, "show", "serving", "--index", "idx"])
    assert shown.exit_code == 0, shown.output
    assert "# promotion gate: 2 decision(s), latest last" in shown.output
    assert shown.output.count("no held-out judgments were given") == 2
    assert "PROMOTED ANYWAY (--force)" in shown.output
    listed = json.loads(runner.invoke(cli, [*base, "list", "--json"]).output)
    assert [row["gate"] for row in listed] == ["no held-out judgments (forced)"]
