"""A fold ensemble (issue 14): one model file whose score is the mean of one booster per CV fold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from features.pipeline import FeaturePipeline
from hybridrank.errors import DataError, HybridRankError
from ltr.training.fold_ensemble import merge_boosters, merge_model_texts
from ltr.training.model import RankingModel
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import CFG, NAMES, synthetic_log

FAST = {"num_boost_round": 30, "early_stopping_rounds": 10, "lightgbm_params": {"num_threads": 1}}


def boosters(n: int, rounds: int = 12) -> tuple[list, np.ndarray]:
    import lightgbm as lgb

    log = synthetic_log(n_queries=30)
    sizes = [20] * 30
    params = {"objective": "lambdarank", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5,
              "bagging_fraction": 0.7, "bagging_freq": 1}
    out = [lgb.train({**params, "seed": s}, lgb.Dataset(log.matrix, log.labels, group=sizes), num_boost_round=rounds)
           for s in range(n)]
    return out, log.matrix


def test_merged_forest_scores_the_mean_of_its_boosters_in_lightgbm_and_compiled(tmp_path: Path) -> None:
    import lightgbm as lgb

    from ltr.training.compiled import compile_model

    members, x = boosters(3)
    x = x.copy()
    x[np.random.default_rng(1).random(x.shape) < 0.2] = np.nan  # missing values take each tree's default branch
    text = merge_boosters(members, 8, x)
    merged = lgb.Booster(model_str=text)
    assert merged.num_trees() == 3 * 8
    want = np.mean([b.predict(x, num_iteration=8) for b in members], axis=0)
    np.testing.assert_allclose(merged.predict(x), want, rtol=0, atol=1e-12)
    (tmp_path / "model.txt").write_text(text)
    native = compile_model(tmp_path / "model.txt", tmp_path / "compiled")
    np.testing.assert_allclose(native(x), want, rtol=0, atol=1e-12)


def test_boosters_of_other_features_or_no_model_text_are_refused() -> None:
    members, _ = boosters(1)
    text = members[0].model_to_string()
    renamed = text.replace("feature_names=Column_0", "feature_names=other", 1)
    with pytest.raises(HybridRankError, match="different features"):
        merge_model_texts([text, renamed])
    with pytest.raises(HybridRankError, match="not a LightGBM model text"):
        merge_model_texts(["tree\nversion=v4\n"])
    with pytest.raises(HybridRankError, match="at least one booster"):
        merge_model_texts([])


@pytest.mark.parametrize("refit", [True, False])
def test_training_saves_one_booster_per_fold_as_their_mean(tmp_path: Path, refit: bool) -> None:
    import lightgbm as lgb

    config = TrainConfig(fold_ensemble=True, cv_folds=3, refit=refit, **FAST)
    result = train_model(synthetic_log(n_queries=40), tmp_path / "m", config=config)
    metrics = result.contract.metrics
    assert metrics["fold_ensemble"] == 3
    trees = lgb.Booster(model_file=str(tmp_path / "m" / "model.txt")).num_trees()
    assert trees == 3 * metrics["best_iteration"]
    model = RankingModel.load(tmp_path / "m", FeaturePipeline(NAMES, CFG))  # checksum and contract hold
    scores = model.score(synthetic_log(n_queries=5, seed=3).matrix)
    assert np.isfinite(scores).all() and np.ptp(scores) > 0
    assert result.importance[0][0] == "dense_cosine"  # the feature carrying the label


def test_fold_ensemble_needs_the_cv_and_lightgbm(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs the k-fold CV"):
        train_model(synthetic_log(n_queries=40), tmp_path / "a", config=TrainConfig(fold_ensemble=True, cv_folds=0))
    with pytest.raises(HybridRankError, match="fold ensemble is a LightGBM option"):
        train_model(synthetic_log(n_queries=10), tmp_path / "b",
                    config=TrainConfig(model_type="listnet", fold_ensemble=True))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()



def test_the_default_is_one_refit_booster(tmp_path: Path) -> None:
    import lightgbm as lgb

    result = train_model(synthetic_log(n_queries=40), tmp_path / "m", config=TrainConfig(cv_folds=3, **FAST))
    assert result.contract.metrics["fold_ensemble"] == 0
    trees = lgb.Booster(model_file=str(tmp_path / "m" / "model.txt")).num_trees()
    assert trees == result.contract.metrics["best_iteration"]
