"""Learned rankers in the evaluation table: train/test on logged features, or k-fold CV by query.

Every learned run is scored from a feature log made by ``ltr.training.feature_log.log_features``,
which is the code the live reranker uses (the parity test pins that), so a run here is what serving
would return for the same query and request time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import DataError

if TYPE_CHECKING:
    from connector.retrieval.candidates import Candidate
    from connector.retrieval.retriever import Retriever
    from hybridrank.config import Settings
    from ltr.evaluation.datasets import Collection
    from ltr.evaluation.metrics import RunDict
    from ltr.training.feature_log import FeatureLog
    from ltr.training.train import TrainConfig


def log_split(retriever: Retriever, collection: Collection, split: str, out: Path, *, request_time: datetime,
              window: int | None = None, queries: Mapping[str, str] | None = None,
              on_batch: Callable[[int], None] | None = None) -> FeatureLog:
    """Feature-log the queries of ``split`` (all, or ``queries``; labels from its qrels) and read it back."""
    from features.pipeline import FeaturePipeline
    from ltr.evaluation.judgments import Judgments
    from ltr.training.feature_log import log_features, read_feature_log

    queries = queries if queries is not None else collection.split_queries(split)
    judgments = Judgments(collection.qrels(split), name=f"{collection.name}:{split}")
    log_features(retriever, FeaturePipeline.from_config(retriever.config), queries, judgments, out,
                 request_time=request_time, window=window, on_batch=on_batch,
                 metadata={"collection": collection.name, "collection_name": collection.name,
                           "collection_path": str(collection.path), "split": split})
    return read_feature_log(out)


def run_from_scores(log: FeatureLog, scores: np.ndarray, *, remove_query_doc: bool = False) -> RunDict:
    """A ranx-ready run: each query's logged candidates ordered by ``scores`` (ties by doc id)."""
    from connector.retrieval.candidates import Candidate
    from ltr.evaluation.metrics import run_from_windows

    windows = {}
    for qid, rows in log.groups():
        order = sorted(rows, key=lambda i: (-float(scores[i]), str(log.doc_ids[i])))
        windows[qid] = [Candidate(str(log.doc_ids[i])) for i in order]
    return run_from_windows(windows, remove_query_doc=remove_query_doc)


def subset(log: FeatureLog, qids: set[str]) -> FeatureLog:
    """The rows of ``log`` that belong to ``qids``."""
    mask = np.fromiter((str(q) in qids for q in log.qids), dtype=bool, count=len(log))
    rows = np.flatnonzero(mask)
    return replace(log, qids=log.qids[rows], doc_ids=log.doc_ids[rows], labels=log.labels[rows],
                   query_times=[log.query_times[i] for i in rows], matrix=log.matrix[rows])


def model_scores(model_dir: str | Path, log: FeatureLog) -> np.ndarray:
    """Score a log with a saved model; the model's contract must match the log's features."""
    from hybridrank.errors import ContractMismatch
    from ltr.training.model import RankingModel

    model = RankingModel.load(model_dir)
    if list(model.feature_names) != list(log.feature_names):
        raise ContractMismatch(f"model {model.model_id} was trained on {model.feature_names}, "
                               f"the log has {log.feature_names}")
    # a model blended with fusion scores each query's window relative to itself
    windows = [rows for _, rows in log.groups()] if model.contract.fusion_blend else None
    return model.score(log.matrix, windows)


def cross_validated_run(log: FeatureLog, *, folds: int = 5, config: TrainConfig | None = None,
                        remove_query_doc: bool = False, seed: int = 42) -> RunDict:
    """k-fold CV by query: each fold's queries are scored by a model trained on the other folds."""
    from sklearn.model_selection import KFold

    from ltr.training.train import TrainConfig, train_model

    qids = sorted({str(q) for q in log.qids})
    if folds < 2 or len(qids) < folds:
        raise DataError(f"{folds}-fold cross-validation needs at least {max(folds, 2)} queries, got {len(qids)}")
    scores = np.full(len(log), np.nan)
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    with tempfile.TemporaryDirectory(prefix="hybridrank-cv-") as tmp:
        for fold, (train_idx, test_idx) in enumerate(splitter.split(qids)):
            train_log = subset(log, {qids[i] for i in train_idx})
            result = train_model(train_log, Path(tmp) / f"fold{fold}", config=config or TrainConfig(seed=seed))
            held_out = {qids[i] for i in test_idx}
            rows = np.flatnonzero([str(q) in held_out for q in log.qids])
            scores[rows] = model_scores(result.model_dir, subset(log, held_out))
    return run_from_scores(log, scores, remove_query_doc=remove_query_doc)


# ``TrainConfig`` fields ``saved_and_cv_runs`` passes to LightGBM's CV models only
LIGHTGBM_ONLY = ("lightgbm_params", "param_grid", "monotone", "fold_ensemble")


def saved_and_cv_runs(settings: Settings, retriever: Retriever, collection: Collection, split: str,
                      queries: Mapping[str, str], *, request_time: datetime, window: int | None = None,
                      model_refs: Sequence[str] = (), cv_folds: int = 0, cv_model_types: Sequence[str] = (),
                      cv_options: Mapping[str, Any] | None = None, remove_query_doc: bool = False,
                      say: Callable[[str], None] = print) -> dict[str, RunDict]:
    """Runs of saved models (a directory, a model id, or ``serving``) and of k-fold CV models, all scored
    on one feature log of ``queries`` (what ``hybridrank evaluate --model/--cv-folds`` adds to the table).

    ``cv_options``: ``TrainConfig`` fields of the CV models (``lightgbm_params``, ``param_grid``, ``monotone``,
    ``fold_ensemble``: LightGBM's only; ``fusion_blend``: every model's); a run's name lists those set."""
    from ltr.training.registry import ModelRegistry
    from ltr.training.train import TrainConfig

    runs: dict[str, RunDict] = {}
    say(f"logging the features of {len(queries)} queries for the learned rankers")
    with tempfile.TemporaryDirectory(prefix="hybridrank-eval-") as tmp:
        log = log_split(retriever, collection, split, Path(tmp) / "features.parquet", queries=queries,
                        request_time=request_time, window=window)
    registry = ModelRegistry.from_settings(settings)
    for ref in model_refs:
        path = registry.resolve(ref, index=retriever.index)
        runs[path.name] = run_from_scores(log, model_scores(path, log), remove_query_doc=remove_query_doc)
    for model_type in cv_model_types if cv_folds else ():
        options = {k: v for k, v in (cv_options or {}).items()
                   if v and (model_type == "lightgbm" or k not in LIGHTGBM_ONLY)}
        labels = [_option_label(k, v) for k, v in options.items()]
        name = ", ".join([f"{cv_folds}-fold CV", *labels])
        say(f"{model_type}: {cv_folds}-fold cross-validation by query" + (f" ({', '.join(labels)})" if labels else ""))
        runs[f"{model_type} ({name})"] = cross_validated_run(
            log, folds=cv_folds, config=TrainConfig(model_type=model_type, **options),
            remove_query_doc=remove_query_doc)
    return runs



def _option_label(key: str, value: Any) -> str:
    if key == "lightgbm_params":
        return " ".join(f"{k}={v}" for k, v in value.items())
    if key == "param_grid":
        return f"grid of {len(value)}"
    return key.replace("_", " ") if value is True else f"{key.replace('_', ' ')} {value:g}"


def cross_encoder_run(retriever: Retriever, queries: Mapping[str, str], windows: Mapping[str, list[Candidate]],
                      model_ref: str, *, top_n: int, remove_query_doc: bool = False,
                      on_query: Callable[[int], None] | None = None) -> tuple[RunDict, dict[str, object]]:
    """The run ``ce``: each window's top ``top_n`` reordered by the cross-encoder ``model_ref``; and its
    cost and provenance (pairs, seconds, pairs/s, the model's training metadata)."""
    from ltr.cross_encoder.fine_tune import HYBRID_MODE, read_metadata
    from ltr.cross_encoder.scoring import CrossEncoderScorer, rerank_windows
    from ltr.evaluation.metrics import run_from_windows

    scorer = CrossEncoderScorer.load(model_ref)
    reranked = rerank_windows(scorer, retriever.client, retriever.index, retriever.config.embed_fields,
                              queries, windows, top_n=top_n, on_query=on_query)
    meta: dict[str, object] = {
        "model": model_ref, "top_n": top_n, "over": HYBRID_MODE, "pairs": scorer.pairs_scored,
        "seconds": round(scorer.seconds, 2), "pairs_per_s": round(scorer.pairs_per_s, 2),
        "max_length": scorer.max_length, "training": read_metadata(model_ref) or None,
    }
    return run_from_windows(reranked, remove_query_doc=remove_query_doc), meta
