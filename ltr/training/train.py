"""Training: ``train_model`` turns a feature log into a model directory, whichever the model type.

Input is a feature log (``ltr.training.feature_log``), grouped by query and split for validation
(``ltr.training.training_data``); the model is LightGBM lambdarank (``ltr.training.lambdarank``) or a
small listwise torch ranker (``ltr.training.listnet``). Validation NDCG@10 is reported (through
``ltr.evaluation.metrics``, i.e. ranx) from the model that never saw the validation queries, beside
the fused baselines; the directory gets the contract, the metrics and an importance plot.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import DataError, HybridRankError
from ltr.training.contract import ModelContract, library_versions
from ltr.training.fusion_blend import FusionBlend
from ltr.training.lambdarank import train_lambdarank
from ltr.training.listnet import train_listnet
from ltr.training.model import IMPORTANCE_PNG, MODEL_FILES, write_model_dir
from ltr.training.training_data import TrainingData, prepare, split_queries
from ltr.training.training_queries import write_training_queries

if TYPE_CHECKING:
    from ltr.training.feature_log import FeatureLog

MODEL_TYPES = ("lightgbm", "listnet")


@dataclass
class TrainConfig:
    model_type: str = "lightgbm"
    valid_fraction: float = 0.2
    seed: int = 42
    lightgbm_params: dict[str, Any] = field(default_factory=dict)
    num_boost_round: int = 1000
    # Patience of the early stopping (CV and validation split alike). NDCG@10 over SciFact's train
    # queries climbs slowly with plateaus: the 5-fold CV curve of the demo's split reads .753 at 47
    # trees, .752 at 100, .763 at 200 and peaks at .781 near 555; with 50 rounds of patience the
    # search stopped on the first plateau (47 trees). 300 rounds let it see past such plateaus.
    early_stopping_rounds: int = 300
    listnet_hidden: int = 32
    listnet_epochs: int = 300
    listnet_lr: float = 3e-3
    listnet_patience: int = 25
    cv_folds: int = 5  # LightGBM: choose the number of trees by k-fold CV by query (0/1 = early stopping)
    refit: bool = True  # LightGBM: after early stopping, retrain on train + validation queries
    monotone: bool = False  # LightGBM: monotone constraints where a feature's direction is known
    # LightGBM: parameter sets compared by the CV above (inside the training queries); empty = the defaults
    param_grid: list[dict[str, Any]] = field(default_factory=list)
    # LightGBM: exactly num_boost_round trees, no CV, no early stopping (what training on Dask does)
    fixed_rounds: bool = False
    # LightGBM on a Dask cluster (ltr.training.dask_lambdarank): None = in this process; "" = a LocalCluster
    # of dask_workers processes; else a scheduler address (tcp://host:8786)
    dask_scheduler: str | None = None
    dask_workers: int = 2
    # LightGBM: boost from ``scale * base_score_feature`` (``ltr.training.base_score``; None = from 0), the
    # scale chosen among ``base_score_scales`` by the CV above
    base_score_feature: str | None = None
    base_score_scales: list[float] = field(default_factory=lambda: [1.0])
    # LightGBM: save the mean of one booster per CV fold (``ltr.training.fold_ensemble``) instead of one refit
    # booster; needs the k-fold CV. docs/ltr.md: SciFact .767 -> .773, Cranfield .392 -> .414, ArguAna -.003
    # (p = .34), for cv_folds times the trees to score on every search (SciFact 0.76 -> 3.6 ms per window): an
    # option, not the default
    fold_ensemble: bool = False
    # Any model: blend its score with this weight of a fused feature per window (``ltr.training.fusion_blend``)
    fusion_blend: float = 0.0
    fusion_blend_feature: str = "fused_linear"


@dataclass
class TrainResult:
    model_dir: Path
    contract: ModelContract
    importance: list[tuple[str, float]]
    dropped_queries: int
    train_queries: int
    valid_queries: int


def train_model(
    log: FeatureLog,
    out_dir: str | Path | None,
    *,
    config: TrainConfig | None = None,
    training_meta: Mapping[str, Any] | None = None,
    model_store: Callable[[str], Path] | None = None,
) -> TrainResult:
    """Train, validate and save a model directory; ``out_dir`` None means ``model_store(model_id)``."""
    cfg = config or TrainConfig()
    if cfg.model_type not in MODEL_TYPES:
        raise HybridRankError(f"unknown model type {cfg.model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
    if cfg.base_score_feature is not None and cfg.model_type != "lightgbm":
        raise HybridRankError(f"a base score (boosting from {cfg.base_score_feature}) is a LightGBM option; "
                              f"model type {cfg.model_type!r} trains without one")
    if cfg.monotone and cfg.model_type != "lightgbm":
        raise HybridRankError(f"monotone constraints are a LightGBM option; model type {cfg.model_type!r} "
                              "would train without them")
    if cfg.fold_ensemble and (cfg.model_type != "lightgbm" or cfg.dask_scheduler is not None):
        raise HybridRankError("a fold ensemble is a LightGBM option of in-process training (its k-fold CV); "
                              f"model type {cfg.model_type!r}{' on Dask' if cfg.dask_scheduler else ''} has none")
    if cfg.base_score_feature is not None and cfg.dask_scheduler is not None:
        raise HybridRankError("a base score is not supported on Dask (lightgbm.dask takes no init score per "
                              "partition here): train in one process, or without --base-score")
    blend = _blend(cfg, log)
    data = prepare(log)
    train_g, valid_g, split_how = split_queries(data, cfg.valid_fraction, cfg.seed)
    prep: dict[str, Any] = {}
    if cfg.model_type == "lightgbm" and cfg.dask_scheduler is not None:
        from ltr.training.dask_lambdarank import train_lambdarank_dask
        from ltr.training.lambdarank import effective_params

        save, score, gains, info = train_lambdarank_dask(
            data, train_g, valid_g, params=effective_params(data, cfg.seed, cfg.lightgbm_params, cfg.monotone),
            num_boost_round=cfg.num_boost_round, refit=cfg.refit, scheduler=cfg.dask_scheduler,
            workers=cfg.dask_workers)
    elif cfg.model_type == "lightgbm":
        save, score, gains, info = train_lambdarank(
            data, train_g, valid_g, seed=cfg.seed, lightgbm_params=cfg.lightgbm_params,
            num_boost_round=cfg.num_boost_round, early_stopping_rounds=cfg.early_stopping_rounds,
            cv_folds=0 if cfg.fixed_rounds else cfg.cv_folds, refit=cfg.refit, monotone=cfg.monotone,
            param_grid=cfg.param_grid, fixed_rounds=cfg.fixed_rounds,
            base_feature=cfg.base_score_feature, base_scales=cfg.base_score_scales,
            fold_ensemble=cfg.fold_ensemble)
    else:
        save, score, gains, info, prep = train_listnet(
            data, train_g, valid_g, seed=cfg.seed, hidden=cfg.listnet_hidden, epochs=cfg.listnet_epochs,
            lr=cfg.listnet_lr, patience=cfg.listnet_patience)

    if blend is not None:  # the validation windows are scored as the saved model will score them
        raw_score, names = score, list(data.feature_names)

        def score(matrix: np.ndarray) -> np.ndarray:
            return blend.apply(raw_score(matrix), matrix, names)

    metrics = {**validation_metrics(data, valid_g, score), "train_queries": len(train_g),
               "valid_queries": len(valid_g), "dropped_queries_no_relevant": data.dropped_queries,
               "validation_split": split_how, **{k: v for k, v in info.items() if k not in ("params", "base_score")}}
    created = datetime.now(UTC)
    meta = log.metadata
    digest = hashlib.sha1(f"{created.isoformat()}{meta.get('feature_config_hash')}{cfg.model_type}".encode())
    model_id = f"{cfg.model_type}-{created:%Y%m%dT%H%M%S}-{digest.hexdigest()[:6]}"
    contract = ModelContract(
        model_id=model_id,
        model_type=cfg.model_type,
        model_file=MODEL_FILES[cfg.model_type],
        model_sha256="",
        feature_names=list(data.feature_names),
        missing_policy="native_nan" if cfg.model_type == "lightgbm" else "impute_train_median",
        feature_config_hash=str(meta.get("feature_config_hash", "")),
        feature_params=list(meta.get("feature_params", [])),
        context_params=dict(meta.get("context_params", {})),
        training={
            "index": meta.get("index"), "collection": meta.get("collection"), "split": meta.get("split"),
            "window": meta.get("window"), "request_time": meta.get("request_time"),
            "rows": len(log), "queries": len(data.groups) + data.dropped_queries,
            "params": _jsonable(info.get("params", {"hidden": cfg.listnet_hidden, "lr": cfg.listnet_lr,
                                                    "epochs": cfg.listnet_epochs})),
            "seed": cfg.seed, "valid_fraction": cfg.valid_fraction, **dict(training_meta or {}),
        },
        library_versions=library_versions(),
        metrics=_jsonable(metrics),
        created_at=created.isoformat(timespec="seconds"),
        preprocessing=prep,
        base_score=dict(info.get("base_score") or {}),
        fusion_blend=blend.to_contract() if blend is not None else {},
    )
    importance = sorted(zip(data.feature_names, gains, strict=True), key=lambda t: -t[1])
    target = Path(out_dir) if out_dir is not None else (model_store(model_id) if model_store else Path(model_id))
    def extras(model_dir: Path) -> None:
        plot_importance(importance, model_dir / IMPORTANCE_PNG, title=model_id)
        write_training_queries(model_dir, log)  # the promotion gate judges the model on other queries only

    write_model_dir(target, contract, save, extras=extras)
    return TrainResult(target, contract, importance, data.dropped_queries, len(train_g), len(valid_g))


def _blend(cfg: TrainConfig, log: FeatureLog) -> FusionBlend | None:
    """The configured blend with fusion, refused before training when the log cannot carry it."""
    if cfg.fusion_blend == 0:
        return None
    if not 0 < cfg.fusion_blend <= 1:
        raise HybridRankError(f"the fusion blend weight must be in [0, 1], got {cfg.fusion_blend}")
    if cfg.fusion_blend_feature not in log.feature_names:
        raise DataError(f"a fusion blend needs the feature {cfg.fusion_blend_feature!r} in the log "
                        f"(it has {', '.join(log.feature_names)})")
    return FusionBlend(cfg.fusion_blend_feature, cfg.fusion_blend)


def validation_metrics(data: TrainingData, valid_g: list[int], score: Callable[[np.ndarray], np.ndarray]
                       ) -> dict[str, float]:
    """Window NDCG@10 etc. of the model on the validation queries, beside the fused baselines (ranx).

    The judgments are those inside the logged windows, so these are window metrics (for model
    selection); test-split numbers come from ``hybridrank evaluate``.
    """
    from ltr.evaluation.metrics import evaluate_runs

    qrels = {data.qids[g]: {str(data.doc_ids[r]): int(data.labels[r]) for r in data.groups[g]} for g in valid_g}
    runs: dict[str, dict[str, dict[str, float]]] = {"model": {}}
    baselines = [n for n in ("fused_rrf", "fused_linear") if n in data.feature_names]
    for name in baselines:
        runs[name] = {}
    for g in valid_g:
        rows = data.groups[g]
        qid = data.qids[g]
        model_scores = score(data.matrix[rows])
        runs["model"][qid] = _ranked(data.doc_ids[rows], model_scores)
        for name in baselines:
            runs[name][qid] = _ranked(data.doc_ids[rows], data.matrix[rows, data.feature_names.index(name)])
    report = evaluate_runs(qrels, runs, baseline="model", metrics=("ndcg@10", "mrr@10"))
    out: dict[str, float] = {}
    for run, values in report.means.items():
        prefix = "valid" if run == "model" else f"valid_{run}"
        for metric, value in values.items():
            out[f"{prefix}_window_{metric}"] = value
    return out


def _ranked(doc_ids: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    order = sorted(range(len(doc_ids)), key=lambda i: (-_finite(float(scores[i])), str(doc_ids[i])))
    return {str(doc_ids[i]): float(len(order) - rank) for rank, i in enumerate(order)}


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else -math.inf


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plot_importance(importance: list[tuple[str, float]], path: Path, *, title: str) -> None:
    """A horizontal bar chart of feature importance (gain), written as PNG with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _ in importance][::-1]
    values = [v for _, v in importance][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
    ax.barh(names, values, color="#4C72B0")
    ax.set_xlabel("importance (gain)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
