"""Tiny real LightGBM models over an index's live feature pipeline, for serving tests and the reliability bench."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from features.pipeline import FeaturePipeline
from ltr.training.contract import ModelContract
from ltr.training.model import LIGHTGBM_FILE, write_model_dir


def train_synthetic(pipeline: FeaturePipeline, target: str, scale: float, path: Path, model_id: str) -> None:
    """A model whose score is (a step approximation of) the ``target`` feature, over ``[0, scale)``."""
    import lightgbm as lgb

    rng = np.random.default_rng(7)
    x = rng.random((2000, len(pipeline.names))) * scale
    y = x[:, pipeline.names.index(target)]
    booster = lgb.train({"objective": "regression", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5,
                         "num_leaves": 63}, lgb.Dataset(x, y), num_boost_round=60)
    contract = ModelContract(
        model_id=model_id, model_type="lightgbm", model_file=LIGHTGBM_FILE, model_sha256="",
        feature_names=pipeline.names, missing_policy="native_nan", feature_config_hash=pipeline.config_hash(),
        feature_params=pipeline.feature_params(), context_params=pipeline.context_params(),
        training={"synthetic": target}, library_versions={"lightgbm": lgb.__version__}, metrics={},
        created_at=datetime.now(UTC).isoformat())

    def save(model_file: Path) -> None:
        booster.save_model(str(model_file))

    write_model_dir(path, contract, save)
