"""The promotion gate on real slices: a model trained on SciFact, registered for a Cranfield index where it
does not beat fusion, is refused with the numbers; ``--force`` promotes it and says so."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hybridrank.cli.main import cli
from ltr.training.gate import REFUSED, read_decisions
from ltr.training.registry import ModelRegistry
from tests.support.collection_slices import collection_slice, slice_index

N_TRAIN = 60
N_HELD_OUT = 40
WINDOW = 30


@pytest.fixture(scope="module")
def indices(es: Any, embedder: Any, shared_datasets: Path) -> Iterator[dict[str, str]]:
    scifact_docs, _ = collection_slice(shared_datasets, "scifact", "train", N_TRAIN, 200)
    cranfield_docs, _ = collection_slice(shared_datasets, "cranfield", "test", N_HELD_OUT, 300)
    with slice_index(es, embedder, scifact_docs, "gate-scifact") as scifact, \
            slice_index(es, embedder, cranfield_docs, "gate-cranfield") as cranfield:
        yield {"scifact": scifact, "cranfield": cranfield}


def test_a_model_that_loses_to_fusion_is_refused_with_the_numbers_and_force_promotes_it(
    indices: dict[str, str], es_url: str, shared_datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ES_URL", es_url)
    monkeypatch.delenv("HYBRIDRANK_HOME", raising=False)
    home = tmp_path / "home"
    config = tmp_path / "hybridrank.toml"
    config.write_text(f'home = "{home}"\ncompile_models = false\n\n[gate]\nmin_queries = 20\n\n'
                      + "".join(f"[indices.{name}]\ncandidate_window = {WINDOW}\nknn_num_candidates = 100\n\n"
                                for name in indices.values()), encoding="utf-8")
    runner = CliRunner()
    scifact, cranfield = indices["scifact"], indices["cranfield"]
    held_out = ["--held-out-collection", str(shared_datasets / "cranfield"), "--held-out-limit", str(N_HELD_OUT)]

    logged = runner.invoke(cli, ["--config", str(config), "features", "log", "--collection",
                                 str(shared_datasets / "scifact"), "--split", "train", "--index", scifact,
                                 "--limit-queries", str(N_TRAIN), "--request-time", "2025-01-15T12:00:00Z",
                                 "--out", str(tmp_path / "scifact.parquet")])
    assert logged.exit_code == 0, logged.output

    # trained on SciFact's features, registered for the Cranfield index: the gate judges it on Cranfield
    trained = runner.invoke(cli, ["--config", str(config), "train", "--index", cranfield, "--features-log",
                                  str(tmp_path / "scifact.parquet"), "--cv-folds", "0", "--num-boost-round", "100",
                                  "--register", *held_out])
    assert trained.exit_code == 1, trained.output
    registry = ModelRegistry(home)
    [entry] = registry.list_models(cranfield)
    model_id = entry.model_id
    assert registry.serving(cranfield) is None
    [decision] = read_decisions(entry.path)
    assert decision["outcome"] == REFUSED and not decision["forced"]
    assert decision["delta"] < 0  # it loses to fusion here (by .12 NDCG@10 against linear, p = 2e-5, when written)
    assert decision["queries"] == N_HELD_OUT and decision["excluded_training_queries"] == 0
    assert decision["best_baseline"] in ("bm25", "es", "rrf", "linear")
    assert set(decision["baselines"]) == {"bm25", "es", "rrf", "linear"}
    assert decision["baseline"] == max(decision["baselines"].values())
    # the plain message gives the numbers: model vs best fusion, delta, p, number of queries
    message = " ".join(trained.output.split())
    assert f"gate refused: {model_id} for {cranfield}/default" in message
    assert re.search(rf"NDCG@10 {decision['model']:.4f} vs best baseline {decision['best_baseline']} "
                     rf"{decision['baseline']:.4f} \(delta {decision['delta']:+.4f}, one-sided paired t-test "
                     rf"p = \S+, {N_HELD_OUT} held-out queries", message), message
    assert "cranfield:test qrels" in message and "--force" in message

    forced = runner.invoke(cli, ["--config", str(config), "models", "promote", model_id, "--index", cranfield,
                                 *held_out, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "WARNING: promoted by --force against the promotion gate" in forced.output
    assert "PROMOTED ANYWAY (--force)" in " ".join(forced.output.split())
    assert registry.serving(cranfield) == model_id
    again = read_decisions(entry.path)[-1]
    assert again["forced"] and again["outcome"] == REFUSED
    assert again["model"] == pytest.approx(decision["model"]) and again["queries"] == N_HELD_OUT

    shown = runner.invoke(cli, ["--config", str(config), "models", "show", "serving", "--index", cranfield])
    assert shown.exit_code == 0, shown.output
    assert "# promotion gate: 2 decision(s), latest last" in shown.output
    listed = json.loads(runner.invoke(cli, ["--config", str(config), "models", "list", "--json"]).output)
    assert [row["gate"] for row in listed] == ["refused (forced)"]
    print(json.dumps(decision, indent=1))  # the measured numbers, for the record (pytest -s)
