"""Training beyond one process, on a real SciFact slice: feature logging in 2 worker processes writes the
same rows as one process, and LightGBM on a Dask LocalCluster (2 workers) ranks SciFact test queries
within .005 NDCG@10 of the one-process model trained on the same log with the same number of trees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from connector.client import make_client
from connector.retrieval.retriever import Retriever
from features.pipeline import FeaturePipeline
from hybridrank.config import IndexConfig, Settings
from ltr.evaluation.datasets import load_collection, shared_datasets_dir
from ltr.evaluation.judgments import Judgments
from ltr.evaluation.metrics import evaluate_runs
from ltr.training.feature_log import FeatureLog, log_features, read_feature_log
from ltr.training.model import LIGHTGBM_FILE
from ltr.training.parallel_log import log_features_parallel
from ltr.training.train import TrainConfig, train_model
from tests.support.collection_slices import collection_slice, slice_index

CONFIG = IndexConfig(candidate_window=30, knn_num_candidates=60)
MOMENT = datetime(2025, 1, 1, tzinfo=UTC)
TRAIN_QUERIES, TEST_QUERIES = 200, 100


@pytest.fixture(scope="module")
def scifact(es: Elasticsearch, embedder: Any, shared_datasets: Path, settings: Settings,
            ) -> Iterator[tuple[str, Settings]]:
    train_docs, _ = collection_slice(shared_datasets, "scifact", "train", TRAIN_QUERIES, 1500)
    test_docs, _ = collection_slice(shared_datasets, "scifact", "test", TEST_QUERIES, 0)
    docs = list({d["_id"]: d for d in train_docs + test_docs}.values())
    with slice_index(es, embedder, docs, "test-distributed") as name:
        yield name, settings.model_copy(update={"indices": {name: CONFIG}})


def _log(live: Settings, index: str, embedder: Any, split: str, limit: int, out: Path, *, workers: int
         ) -> FeatureLog:
    collection = load_collection(str(shared_datasets_dir() / "scifact"))
    queries = collection.split_queries(split, limit=limit)
    judgments = Judgments(collection.qrels(split), name=f"scifact:{split}")
    if workers > 1:
        log_features_parallel(live, index, queries, judgments, out, workers=workers, request_time=MOMENT)
    else:
        retriever = Retriever(make_client(live), index, CONFIG, embedder)
        log_features(retriever, FeaturePipeline.from_config(CONFIG), queries, judgments, out, request_time=MOMENT)
    return read_feature_log(out)


def _ndcg(model_dir: Path, log: FeatureLog, qrels: dict[str, dict[str, int]]) -> float:
    import lightgbm as lgb

    scores = lgb.Booster(model_file=str(model_dir / LIGHTGBM_FILE)).predict(log.matrix)
    run: dict[str, dict[str, float]] = {}
    for qid, rows in log.groups():
        run[qid] = {str(log.doc_ids[r]): float(scores[r]) for r in rows}
    report = evaluate_runs({q: qrels[q] for q in run}, {"model": run}, baseline=None, metrics=("ndcg@10",))
    return float(report.means["model"]["ndcg@10"])


def test_two_logging_workers_write_the_rows_one_process_writes(
        scifact: tuple[str, Settings], embedder: Any, tmp_path: Path) -> None:
    index, live = scifact
    one = _log(live, index, embedder, "train", 24, tmp_path / "one.parquet", workers=1)
    two = _log(live, index, embedder, "train", 24, tmp_path / "two.parquet", workers=2)
    assert list(one.qids) == list(two.qids) and list(one.doc_ids) == list(two.doc_ids)
    assert np.allclose(one.matrix, two.matrix, equal_nan=True, rtol=1e-9, atol=1e-9)
    assert (one.labels == two.labels).all() and one.metadata == two.metadata


def test_lightgbm_on_dask_ranks_scifact_as_well_as_one_process(
        scifact: tuple[str, Settings], embedder: Any, tmp_path: Path) -> None:
    index, live = scifact
    train_log = _log(live, index, embedder, "train", TRAIN_QUERIES, tmp_path / "train.parquet", workers=2)
    test_log = _log(live, index, embedder, "test", TEST_QUERIES, tmp_path / "test.parquet", workers=1)
    rounds = dict(fixed_rounds=True, num_boost_round=150, refit=True, lightgbm_params={"num_leaves": 15})
    single = train_model(train_log, tmp_path / "single", config=TrainConfig(**rounds))  # type: ignore[arg-type]
    on_dask = train_model(train_log, tmp_path / "dask", config=TrainConfig(
        **rounds, dask_scheduler="", dask_workers=2))  # type: ignore[arg-type]
    assert on_dask.contract.training["params"]["num_leaves"] == 15
    qrels = load_collection(str(shared_datasets_dir() / "scifact")).qrels("test")
    single_ndcg, dask_ndcg = _ndcg(single.model_dir, test_log, qrels), _ndcg(on_dask.model_dir, test_log, qrels)
    print(f"SciFact test NDCG@10 ({TEST_QUERIES} queries): one process {single_ndcg:.4f}, Dask {dask_ndcg:.4f}")
    assert single_ndcg > 0.4
    assert abs(dask_ndcg - single_ndcg) <= 0.005
