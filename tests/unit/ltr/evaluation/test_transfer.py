"""The cross-collection harness on synthetic logs: feature subsets, fusion runs, protocol and transfer rows."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrank.errors import DataError
from ltr.evaluation.transfer import (
    CollectionLogs,
    CollectionSpec,
    fusion_runs,
    protocol_report,
    select_features,
    summary,
    transfer_table,
)
from ltr.training.feature_log import FeatureLog
from ltr.training.train import TrainConfig
from tests.support.feature_logs import synthetic_log

CONFIG = TrainConfig(num_boost_round=20, early_stopping_rounds=5, cv_folds=3, lightgbm_params={"num_threads": 1})


def _with_fusions(seed: int) -> FeatureLog:
    """A synthetic log plus fused_linear (noisy copy of the label-carrying cosine) and fused_rrf (noise)."""
    log = synthetic_log(n_queries=24, seed=seed)
    rng = np.random.default_rng(seed)
    linear = log.matrix[:, 1] + rng.normal(0, 0.3, len(log))
    rrf = rng.normal(0, 1, len(log))
    log.matrix = np.column_stack([log.matrix, linear, rrf])
    log.feature_names = [*log.feature_names, "fused_linear", "fused_rrf"]
    log.metadata = {**log.metadata, "feature_names": log.feature_names}
    return log


def _qrels(log: FeatureLog) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for q, d, label in zip(log.qids, log.doc_ids, log.labels, strict=True):
        if label > 0:
            qrels.setdefault(str(q), {})[str(d)] = int(label)
    return qrels


def test_select_features_keeps_the_order_asked_and_refuses_unknown_names() -> None:
    log = _with_fusions(0)
    picked = select_features(log, ["rank_knn", "dense_cosine"])
    assert picked.feature_names == ["rank_knn", "dense_cosine"]
    assert np.array_equal(picked.matrix, log.matrix[:, [2, 1]], equal_nan=True)
    assert picked.metadata["feature_names"] == ["rank_knn", "dense_cosine"]
    with pytest.raises(DataError, match="no column"):
        select_features(log, ["query_idf_sum"])


def test_fusion_runs_rank_by_the_fused_columns() -> None:
    log = _with_fusions(1)
    runs = fusion_runs(log)
    rows = [i for i, q in enumerate(log.qids) if q == "q0"]
    best = max(rows, key=lambda i: log.matrix[i, 3])
    q0 = runs["linear"]["q0"]
    assert max(q0, key=lambda d: q0[d]) == log.doc_ids[best]
    with pytest.raises(DataError, match="fusions cannot be scored"):
        fusion_runs(select_features(log, ["dense_cosine"]))


def test_protocol_and_transfer_rows() -> None:
    cv_log, split_train, split_test = _with_fusions(2), _with_fusions(3), _with_fusions(4)
    cv = CollectionLogs(CollectionSpec("a", "a", "a", cv_folds=3), None, cv_log, _qrels(cv_log))
    split = CollectionLogs(CollectionSpec("b", "b", "b", train_split="train"), split_train, split_test,
                           _qrels(split_test))
    row = summary(protocol_report(split, CONFIG))
    assert row["best_fusion"] in ("linear", "rrf")
    assert row["model"] > row["rrf"]  # the cosine carries the label; RRF here is noise
    assert row["delta"] == pytest.approx(row["model"] - row[row["best_fusion"]], abs=1e-4)
    table = transfer_table({"a": cv, "b": split}, CONFIG, own={"b": row}, say=lambda _m: None)
    assert set(table["a"]) == {"b"}  # the diagonal of "a" is not in ``own``: left out
    assert table["b"]["b"]["model"] == row["model"]
    assert set(table["b"]) == {"a", "b"}
    assert table["a"]["b"]["delta_vs_linear"] == pytest.approx(
        table["a"]["b"]["model"] - table["a"]["b"]["linear"], abs=1e-4)


def test_transfer_of_a_model_without_the_fused_columns_still_scores_the_fusions() -> None:
    source, target = _with_fusions(5), _with_fusions(6)
    logs = {"a": CollectionLogs(CollectionSpec("a", "a", "a", cv_folds=3), None, source, _qrels(source)),
            "b": CollectionLogs(CollectionSpec("b", "b", "b", cv_folds=3), None, target, _qrels(target))}
    table = transfer_table(logs, CONFIG, ["dense_cosine", "rank_knn"], own={}, say=lambda _m: None)
    assert table["a"]["b"]["linear"] == summary(protocol_report(logs["b"], CONFIG, ["dense_cosine"]))["linear"]
