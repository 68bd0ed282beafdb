"""A model blended with a fused feature per window (issue 14): carried in the contract, applied on every path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hybridrank.errors import DataError, HybridRankError, ModelError
from ltr.evaluation.learned import model_scores
from ltr.training.feature_log import FeatureLog
from ltr.training.fusion_blend import FusionBlend, from_contract, window_minmax
from ltr.training.model import RankingModel
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import NAMES, synthetic_log

FAST = {"num_boost_round": 20, "cv_folds": 0, "early_stopping_rounds": 5, "lightgbm_params": {"num_threads": 1}}


def test_window_minmax_ranks_missing_lowest_and_a_flat_window_equal() -> None:
    np.testing.assert_array_equal(window_minmax(np.array([2.0, 4.0, np.nan, 3.0])), [0.0, 1.0, 0.0, 0.5])
    np.testing.assert_array_equal(window_minmax(np.array([7.0, 7.0])), [1.0, 1.0])
    np.testing.assert_array_equal(window_minmax(np.array([np.nan, np.inf])), [0.0, 0.0])


@pytest.fixture(scope="module")
def blended(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("blend")
    log = synthetic_log(n_queries=30)
    train_model(log, root / "plain", config=TrainConfig(**FAST))
    train_model(log, root / "half", config=TrainConfig(fusion_blend=0.5, fusion_blend_feature="dense_cosine", **FAST))
    return root / "plain", root / "half"


def test_the_contract_carries_the_blend_and_every_window_is_scored_with_it(blended: tuple[Path, Path]) -> None:
    plain, half = blended
    assert json.loads((half / "contract.json").read_text())["fusion_blend"] == {"feature": "dense_cosine",
                                                                                "weight": 0.5}
    assert RankingModel.load(plain).contract.fusion_blend == {}
    log = synthetic_log(n_queries=4, seed=5)
    raw, got = model_scores(plain, log), model_scores(half, log)
    for _, rows in log.groups():  # each window on its own: the same numbers as serving one window
        want = 0.5 * window_minmax(raw[rows]) + 0.5 * window_minmax(log.matrix[rows, 1])
        np.testing.assert_allclose(got[rows], want, rtol=0, atol=1e-12)
        np.testing.assert_allclose(RankingModel.load(half).score(log.matrix[rows]), want, rtol=0, atol=1e-12)
        assert got[rows].max() <= 1.0


def test_a_blend_of_weight_one_is_the_fused_order(tmp_path: Path) -> None:
    log = synthetic_log(n_queries=20)
    train_model(log, tmp_path / "m", config=TrainConfig(fusion_blend=1.0, fusion_blend_feature="rank_knn", **FAST))
    scores = model_scores(tmp_path / "m", log)
    _, rows = next(log.groups())
    np.testing.assert_array_equal(scores[rows], window_minmax(log.matrix[rows, 2]))


def test_a_blend_the_log_cannot_carry_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs the feature 'fused_linear'"):
        train_model(synthetic_log(n_queries=20), tmp_path / "a", config=TrainConfig(fusion_blend=0.7, **FAST))
    with pytest.raises(HybridRankError, match=r"must be in \[0, 1\]"):
        train_model(synthetic_log(n_queries=20), tmp_path / "b", config=TrainConfig(fusion_blend=1.5, **FAST))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_tampered_blend_in_a_contract_is_refused_at_load(blended: tuple[Path, Path], tmp_path: Path) -> None:
    assert from_contract({"feature": "dense_cosine", "weight": 1}, NAMES, "m") == FusionBlend("dense_cosine", 1.0)
    for bad, message in (({"feature": "nope", "weight": 0.5}, "not one of the model's features"),
                         ({"feature": "dense_cosine", "weight": 2}, r"not a number in \[0, 1\]"),
                         ({"feature": "dense_cosine", "weight": True}, r"not a number in \[0, 1\]")):
        with pytest.raises(ModelError, match=message):
            from_contract(bad, NAMES, "m")
    _, half = blended
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in half.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    contract = json.loads((copy / "contract.json").read_text())
    contract["fusion_blend"]["weight"] = 3
    (copy / "contract.json").write_text(json.dumps(contract))
    with pytest.raises(ModelError, match="fusion_blend weight 3"):
        RankingModel.load(copy)


def test_a_log_not_grouped_by_query_is_blended_query_by_query(blended: tuple[Path, Path]) -> None:
    log = synthetic_log(n_queries=3, seed=2)
    order = np.r_[np.arange(0, 10), np.arange(20, 30), np.arange(10, 20), np.arange(30, len(log))]
    mixed = FeatureLog(log.qids[order], log.doc_ids[order], log.labels[order], [None] * len(order),
                       log.matrix[order], list(log.feature_names), dict(log.metadata))
    np.testing.assert_array_equal(model_scores(blended[1], mixed), model_scores(blended[1], log)[order])
