"""Training data: unusable feature logs are refused with plain messages; the split is by time when it can be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from hybridrank.errors import DataError
from ltr.training.train import train_model
from ltr.training.training_data import prepare, split_queries
from tests.support.feature_logs import synthetic_log


def test_bad_training_input_gets_plain_messages(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no query has a relevant document"):
        train_model(synthetic_log(n_queries=5, no_relevant=5), tmp_path / "x")
    log = synthetic_log(n_queries=10)
    log.matrix[:, 2] = np.nan
    with pytest.raises(DataError, match="'rank_knn' are NaN for every training row"):
        train_model(log, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_time_split_when_every_query_has_a_time() -> None:
    log = synthetic_log(n_queries=10)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    log.query_times = [start + timedelta(days=int(str(q)[1:])) for q in log.qids]
    data = prepare(log)
    _train_g, valid_g, how = split_queries(data, 0.2, seed=1)
    assert how == "time"
    assert [data.qids[g] for g in valid_g] == ["q8", "q9"]  # the latest queries validate
