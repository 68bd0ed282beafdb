"""Fine-tuning without a model or a cluster: refused input, and the CLI's defaults and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hybridrank.cli.main import cli
from hybridrank.errors import DataError
from ltr.cross_encoder.fine_tune import train_pairs


def test_training_refuses_an_unknown_loss_and_a_listwise_run_without_queries(tmp_path: Path) -> None:
    pairs, labels = [("q", "relevant"), ("q", "not")], [1.0, 0.0]
    with pytest.raises(DataError, match="unknown cross-encoder loss 'hinge'"):
        train_pairs(pairs, labels, tmp_path, loss="hinge")
    with pytest.raises(DataError, match="needs the query of every pair"):
        train_pairs(pairs, labels, tmp_path, loss="listwise", groups=["q"])


# -- CLI -----------------------------------------------------------------------------------------
# -- CLI -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["cross-encoder", "--help"], ["cross-encoder", "train", "--help"],
                                  ["cross-encoder", "score", "--help"], ["cross-encoder", "bench", "--help"]])
def test_cross_encoder_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_evaluate_help_lists_the_cross_encoder_baseline() -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0 and "--cross-encoder" in result.output and "--cross-encoder-top-n" in result.output


def test_score_with_a_missing_model_exits_1_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cross-encoder", "score", "--model", str(tmp_path / "nope"), "--query", "q", "t"])
    assert result.exit_code == 1
    assert f"cross-encoder not found: {tmp_path / 'nope'}" in result.output


def test_the_cli_trains_with_the_library_defaults() -> None:
    import inspect

    from hybridrank.cli.cross_encoder import train
    from ltr.cross_encoder.fine_tune import DEFAULT_MAX_LENGTH, fine_tune_cross_encoder

    cli = {p.name: p.default for p in train.params}
    library = {name: p.default for name, p in inspect.signature(fine_tune_cross_encoder).parameters.items()
               if p.default is not inspect.Parameter.empty}
    shared = sorted(set(cli) & set(library))
    assert {"max_length", "epochs", "max_pairs", "learning_rate", "batch_size"} <= set(shared)
    assert {n: cli[n] for n in shared} == {n: library[n] for n in shared}
    assert library["max_length"] == DEFAULT_MAX_LENGTH
