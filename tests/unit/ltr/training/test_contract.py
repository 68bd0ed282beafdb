"""Training on a synthetic feature log, the model directory, and every way loading can refuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig
from hybridrank.errors import ContractMismatch, ModelError
from ltr.training.contract import ModelContract
from ltr.training.model import RankingModel
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import CFG, NAMES, synthetic_log


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "m1"
    result = train_model(synthetic_log(no_relevant=4), out, config=TrainConfig(num_boost_round=200))
    assert result.dropped_queries == 4
    return out


def test_model_directory_is_complete_and_learns(trained: Path) -> None:
    assert sorted(p.name for p in trained.iterdir()) == ["contract.json", "importance.png", "metrics.json",
                                                         "model.txt", "training-queries.json"]
    recorded = json.loads((trained / "training-queries.json").read_text())
    assert recorded["by"] == "id" and len(recorded["queries"]) == 40  # every query, validation ones too
    contract = json.loads((trained / "contract.json").read_text())
    assert contract["feature_names"] == NAMES and contract["missing_policy"] == "native_nan"
    assert contract["metrics"]["dropped_queries_no_relevant"] == 4
    assert contract["metrics"]["valid_window_ndcg@10"] > 0.8  # the label is in dense_cosine
    assert {"lightgbm", "numpy", "python"} <= set(contract["library_versions"])
    model = RankingModel.load(trained, FeaturePipeline(NAMES, CFG))
    scores = model.score(np.array([[5.0, 0.9, np.nan], [5.0, 0.1, 3.0]]))
    assert scores[0] > scores[1]
    assert not list(trained.parent.glob(".tmp-*"))  # nothing half-written left behind


@pytest.mark.parametrize(("live", "message"), [
    (["bm25_title", "dense_cosine"], "feature 'rank_knn' missing from the live config"),
    (["bm25_title", "dense_cosine", "rank_knn", "rank_bm25"],
     "feature 'rank_bm25' is in the live config but the model was not trained on it"),
    (["bm25_title", "rank_knn", "dense_cosine"],
     "feature order differs at position 1: model has 'dense_cosine', live config has 'rank_knn'"),
])
def test_contract_mismatch_names_the_difference(trained: Path, live: list[str], message: str) -> None:
    with pytest.raises(ContractMismatch) as err:
        RankingModel.load(trained, FeaturePipeline(live, CFG))
    assert message in str(err.value)


def test_changed_index_setting_is_named(trained: Path) -> None:
    with pytest.raises(ContractMismatch, match="index setting 'rrf_k' differs: model 60, live 10"):
        RankingModel.load(trained, FeaturePipeline(NAMES, IndexConfig(rrf_k=10)))


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_truncated_model_file_is_a_plain_error(trained: Path, tmp_path: Path) -> None:
    broken = _copy(trained, tmp_path / "broken")
    data = (broken / "model.txt").read_bytes()
    (broken / "model.txt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"model\.txt is truncated or corrupt"):
        RankingModel.load(broken, FeaturePipeline(NAMES, CFG))


def test_corrupt_model_with_matching_checksum_is_a_plain_error(trained: Path, tmp_path: Path) -> None:
    from ltr.training.scorer import file_sha256

    broken = _copy(trained, tmp_path / "garbage")
    (broken / "model.txt").write_text("this is not a model\n")
    contract = json.loads((broken / "contract.json").read_text())
    contract["model_sha256"] = file_sha256(broken / "model.txt")
    (broken / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(ModelError, match="not a readable LightGBM model"):
        RankingModel.load(broken)


def test_truncated_contract_and_missing_directory(trained: Path, tmp_path: Path) -> None:
    broken = _copy(trained, tmp_path / "badjson")
    (broken / "contract.json").write_text((trained / "contract.json").read_text()[:100])
    with pytest.raises(ModelError, match="unreadable or truncated"):
        ModelContract.read(broken)
    with pytest.raises(ModelError, match="no model directory"):
        RankingModel.load(tmp_path / "nothing")


def test_wrong_width_matrix_is_refused(trained: Path) -> None:
    with pytest.raises(ModelError, match="expects 3 features"):
        RankingModel.load(trained).score(np.zeros((2, 4)))


def test_out_dir_that_exists_is_not_overwritten(trained: Path) -> None:
    with pytest.raises(ModelError, match="already exists"):
        train_model(synthetic_log(n_queries=10), trained)
