"""Boosting from a base score (issue 14): trained with LightGBM's init score, served by the contract."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from hybridrank.errors import DataError, ModelError
from ltr.training.base_score import BaseScore, from_contract
from ltr.training.model import RankingModel
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import synthetic_log


def _config(**kw: object) -> TrainConfig:
    return TrainConfig(num_boost_round=20, early_stopping_rounds=5, cv_folds=3, lightgbm_params={"num_threads": 1},
                       **kw)  # type: ignore[arg-type]


def test_margin_scales_the_feature_and_adds_nothing_for_missing_values() -> None:
    matrix = np.array([[1.0, 0.5], [2.0, np.nan]])
    assert BaseScore("b", 4.0).margin(matrix, ["a", "b"]).tolist() == [2.0, 0.0]


def test_contract_entry_is_checked() -> None:
    assert from_contract({}, ["a"], "m") is None
    assert from_contract({"feature": "a", "scale": 2}, ["a"], "m") == BaseScore("a", 2.0)
    with pytest.raises(ModelError, match="'z' is not one of the model's features"):
        from_contract({"feature": "z", "scale": 1.0}, ["a"], "m")
    with pytest.raises(ModelError, match="scale 'x' is not a finite number"):
        from_contract({"feature": "a", "scale": "x"}, ["a"], "m")


def test_served_score_is_the_trees_plus_the_contracts_base_score(tmp_path: Path) -> None:
    log = synthetic_log(n_queries=30)
    result = train_model(log, tmp_path / "m", config=_config(base_score_feature="dense_cosine",
                                                              base_score_scales=[2.0, 8.0]))
    contract = json.loads((tmp_path / "m" / "contract.json").read_text())
    tried = result.contract.metrics["param_grid"]
    assert [t["base_scale"] for t in tried] == [2.0, 8.0]
    best = max(tried, key=lambda t: t["cv_ndcg@10"])
    assert contract["base_score"] == {"feature": "dense_cosine", "scale": best["base_scale"]}
    served = RankingModel.load(tmp_path / "m").score(log.matrix)
    trees = lgb.Booster(model_file=str(tmp_path / "m" / "model.txt")).predict(log.matrix)
    expected = trees + best["base_scale"] * np.nan_to_num(log.matrix[:, 1])
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)


def test_without_a_base_score_the_contract_entry_is_empty(tmp_path: Path) -> None:
    result = train_model(synthetic_log(n_queries=30), tmp_path / "m", config=_config())
    assert result.contract.base_score == {}


def test_an_unlogged_base_feature_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="base score feature 'fused_linear' is not among the logged features"):
        train_model(synthetic_log(n_queries=30), tmp_path / "m", config=_config(base_score_feature="fused_linear"))


def test_a_contract_with_a_bad_base_score_is_refused_at_load(tmp_path: Path) -> None:
    train_model(synthetic_log(n_queries=30), tmp_path / "m", config=_config(base_score_feature="dense_cosine"))
    path = tmp_path / "m" / "contract.json"
    raw = json.loads(path.read_text())
    raw["base_score"] = {"feature": "fused_linear", "scale": 1.0}
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="base_score feature 'fused_linear'"):
        RankingModel.load(tmp_path / "m")


def test_listnet_with_a_base_score_is_refused(tmp_path: Path) -> None:
    from hybridrank.errors import HybridRankError

    with pytest.raises(HybridRankError, match=r"a base score .* is a LightGBM option"):
        train_model(synthetic_log(n_queries=30), tmp_path / "m",
                    config=_config(model_type="listnet", base_score_feature="dense_cosine"))


def test_a_base_score_on_dask_is_refused_before_any_work(tmp_path: Path) -> None:
    from hybridrank.errors import HybridRankError

    with pytest.raises(HybridRankError, match="a base score is not supported on Dask"):
        train_model(synthetic_log(n_queries=30), tmp_path / "m",
                    config=_config(base_score_feature="dense_cosine", dask_scheduler=""))
    assert not (tmp_path / "m").exists()
