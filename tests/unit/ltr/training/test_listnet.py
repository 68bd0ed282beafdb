"""ListNet: trained through ``train_model``, loaded with the training medians imputing missing values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from features.pipeline import FeaturePipeline
from ltr.training.model import RankingModel
from ltr.training.train import TrainConfig, train_model
from tests.support.feature_logs import CFG, NAMES, synthetic_log


def test_listnet_trains_and_loads_with_imputation(tmp_path: Path) -> None:
    result = train_model(synthetic_log(), tmp_path / "net",
                         config=TrainConfig(model_type="listnet", listnet_epochs=80))
    assert (tmp_path / "net" / "model.pt").is_file()
    assert result.contract.missing_policy == "impute_train_median"
    assert result.contract.metrics["valid_window_ndcg@10"] > 0.7
    model = RankingModel.load(tmp_path / "net", FeaturePipeline(NAMES, CFG))
    scores = model.score(np.array([[5.0, 0.9, np.nan], [5.0, 0.1, 3.0]]))
    assert np.isfinite(scores).all() and scores[0] > scores[1]
