"""A synthetic feature log (three features, one of them carrying the label) for training tests."""

from __future__ import annotations

import numpy as np

from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig
from ltr.training.feature_log import FeatureLog

NAMES = ["bm25_title", "dense_cosine", "rank_knn"]
CFG = IndexConfig()


def synthetic_log(n_queries: int = 40, per_query: int = 20, *, seed: int = 0, no_relevant: int = 0) -> FeatureLog:
    """dense_cosine carries the label; bm25_title is noise; rank_knn is NaN for a third of the rows."""
    rng = np.random.default_rng(seed)
    pipeline = FeaturePipeline(NAMES, CFG)
    qids, docs, labels, rows = [], [], [], []
    for q in range(n_queries):
        grades = np.zeros(per_query, dtype=np.int32)
        if q >= no_relevant:
            grades[rng.choice(per_query, 3, replace=False)] = 1
        for d in range(per_query):
            cos = 0.3 + 0.4 * grades[d] + rng.normal(0, 0.15)
            rank = float(d + 1) if rng.random() > 0.33 else np.nan
            rows.append([rng.normal(5, 2), cos, rank])
            qids.append(f"q{q}")
            docs.append(f"d{q}-{d}")
            labels.append(grades[d])
    meta = {"feature_names": NAMES, "feature_config_hash": pipeline.config_hash(),
            "feature_params": pipeline.feature_params(), "context_params": pipeline.context_params(),
            "index": "idx", "window": per_query, "request_time": "2025-01-01T00:00:00+00:00"}
    return FeatureLog(np.asarray(qids, dtype=object), np.asarray(docs, dtype=object),
                      np.asarray(labels, dtype=np.int32), [None] * len(labels), np.asarray(rows, dtype=np.float64),
                      list(NAMES), meta)
