"""LightGBM options of issue 14: monotone constraints by feature name, parameters chosen by inner CV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hybridrank.errors import HybridRankError
from ltr.training.lambdarank import monotone_constraints
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import synthetic_log


def test_monotone_directions_by_name() -> None:
    names = ["bm25_title", "dense_cosine", "rank_knn", "query_length", "bm25_top_gap", "bm25_zscore",
             "query_idf_sum", "bm25_phrase_ratio", "fused_linear"]
    assert monotone_constraints(names) == [1, 1, -1, 0, 0, 1, 0, 0, 1]


def test_monotone_training_records_the_constraints(tmp_path: Path) -> None:
    config = TrainConfig(monotone=True, num_boost_round=30, early_stopping_rounds=10, cv_folds=3,
                         lightgbm_params={"num_threads": 1})
    result = train_model(synthetic_log(n_queries=30), tmp_path / "m", config=config)
    assert result.contract.training["params"]["monotone_constraints"] == [1, 1, -1]
    assert result.contract.training["params"]["monotone_constraints_method"] == "advanced"


def test_param_grid_is_chosen_by_cv_on_the_training_queries(tmp_path: Path) -> None:
    grid = [{}, {"num_leaves": 3, "min_data_in_leaf": 5}]
    config = TrainConfig(param_grid=grid, num_boost_round=30, early_stopping_rounds=10, cv_folds=3,
                         lightgbm_params={"num_threads": 1})
    result = train_model(synthetic_log(n_queries=30), tmp_path / "m", config=config)
    tried = result.contract.metrics["param_grid"]
    assert [t["params"] for t in tried] == grid
    best = max(tried, key=lambda t: t["cv_ndcg@10"])
    assert result.contract.metrics["lightgbm_cv_ndcg@10"] == best["cv_ndcg@10"]
    assert result.contract.metrics["best_iteration"] == best["trees"]
    chosen = result.contract.training["params"]
    assert all(chosen[k] == v for k, v in best["params"].items())
    assert json.loads((tmp_path / "m" / "contract.json").read_text())["metrics"]["param_grid"] == tried


def test_monotone_is_refused_for_a_model_type_without_it(tmp_path: Path) -> None:
    with pytest.raises(HybridRankError, match="monotone constraints are a LightGBM option"):
        train_model(synthetic_log(n_queries=10), tmp_path / "m",
                    config=TrainConfig(model_type="listnet", monotone=True))
    assert not (tmp_path / "m").exists()
