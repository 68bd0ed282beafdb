"""The CLI is thin and lazy: --help of every command works and never imports the heavy libraries."""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hybridrank.cli.main import COMMANDS, cli


def test_root_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from hybridrank.cli.main import COMMANDS, main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "for name in COMMANDS:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'lightgbm', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2


def test_evaluate_records_a_command_line_that_reproduces_the_run() -> None:
    """The JSON's ``command`` is typed back as it reads: repeatable options once per value, none when unused."""
    import shlex

    from hybridrank.cli.evaluate import _invocation_args, evaluate

    argv = ["--collection", "c", "--index", "i", "--cv-folds", "5",
            "--cv-model-type", "lightgbm", "--cv-model-type", "listnet",
            "--param", "num_leaves=7", "--param", "objective=rank_xendcg", "--fold-ensemble", "--fusion-blend", "0.7",
            "--param-grid", '[{"num_leaves": 31}, {"num_leaves": 7, "min_data_in_leaf": 50}]']
    ctx = evaluate.make_context("evaluate", list(argv))
    recorded = _invocation_args(ctx)
    assert "--model" not in recorded
    assert recorded[recorded.index("--cv-model-type") + 1] == "lightgbm"
    assert recorded.count("--cv-model-type") == 2
    assert ctx.params["params"] == {"num_leaves": 7, "objective": "rank_xendcg"} and "--fold-ensemble" in recorded
    assert ctx.params["param_grid"] == [{"num_leaves": 31}, {"num_leaves": 7, "min_data_in_leaf": 50}]
    again = evaluate.make_context("evaluate", shlex.split(shlex.join(recorded[1:])))
    assert again.params == ctx.params


def test_every_command_runs_with_the_tuned_collector_thresholds() -> None:
    import gc

    from hybridrank.runtime import GC_THRESHOLDS

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert CliRunner().invoke(cli, ["es", "--help"]).exit_code == 0
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


def test_serve_on_a_port_in_use_is_a_plain_usage_error_before_any_warm_up() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "Traceback" not in result.output


def test_an_unwritable_output_path_is_a_plain_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["datasets", "films", "--out", str(blocker / "films"), "--limit", "10"])
    assert result.exit_code == 1, result.output
    assert "Error: Not a directory: " in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("grid", ["not json", "{}", "[]", "[1, 2]"])
def test_a_parameter_grid_that_is_not_a_list_of_objects_is_a_usage_error(grid: str) -> None:
    result = CliRunner().invoke(cli, ["evaluate", "--collection", "c", "--index", "i", "--param-grid", grid])
    assert result.exit_code == 2 and "--param-grid" in result.output
