"""Training: LightGBM lambdarank (grouped by query) or a small listwise torch ranker (ListNet).

Input is a feature log (``ltr.training.feature_log``). Queries whose window holds no relevant document
teach nothing to a listwise loss and are dropped (the count is reported). The validation split is
by query (``GroupShuffleSplit``), or by time when every query has a timestamp.

LightGBM picks its number of trees by k-fold cross-validation by query over the training queries
(its own ndcg@10, early stopping), or with ``cv_folds=0`` by early stopping on the validation split;
then (``refit``, the default) it retrains on every query with that many trees. On SciFact one small
validation split chose anywhere from 8 to 380 trees; CV is steadier. Validation NDCG@10 is reported
(through ``ltr.evaluation.metrics``, i.e. ranx) from the model that never saw the validation queries.
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
from ltr.training.model import IMPORTANCE_PNG, MODEL_FILES, write_model_dir

if TYPE_CHECKING:
    from ltr.training.feature_log import FeatureLog

MODEL_TYPES = ("lightgbm", "listnet")

LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.05,
    # Chosen by LightGBM's own 5-fold CV by query on SciFact's *train* split (NDCG@10 of the best
    # round; the test split never consulted): num_leaves 7/15/31/63/127 -> .752/.761/.794/.792/.790;
    # min_data_in_leaf 50 .760; learning_rate .02 .751; feature_fraction .8 .760; bagging .8 .778;
    # lambdarank_truncation_level 20 .775 (each against 15 leaves, the rest as here). docs/ltr.md has
    # what the test split says afterwards.
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    # No row/feature subsampling and pairs beyond the top 20 kept: the window holds ~170 candidates
    # (the union of both legs) and SciFact has ~1 relevant document per query; also a fully
    # deterministic fit for a given seed.
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "bagging_freq": 0,
    "lambdarank_truncation_level": 100,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}


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


@dataclass
class TrainingData:
    matrix: np.ndarray
    labels: np.ndarray
    qids: list[str]  # one per group, in order
    groups: list[np.ndarray]  # row indices per query
    query_times: list[datetime | None]
    doc_ids: np.ndarray
    feature_names: list[str]
    dropped_queries: int


@dataclass
class TrainResult:
    model_dir: Path
    contract: ModelContract
    importance: list[tuple[str, float]]
    dropped_queries: int
    train_queries: int
    valid_queries: int


def prepare(log: FeatureLog) -> TrainingData:
    """Group rows by query, drop queries without a relevant candidate, refuse unusable input."""
    if len(log) == 0:
        raise DataError("the feature log is empty: no rows to train on")
    groups: list[np.ndarray] = []
    qids: list[str] = []
    times: list[datetime | None] = []
    dropped = 0
    first_row: dict[str, int] = {}
    for qid, idx in log.groups():
        first_row[qid] = int(idx[0])
        if not (log.labels[idx] > 0).any():
            dropped += 1
            continue
        groups.append(idx)
        qids.append(qid)
        times.append(log.query_times[int(idx[0])])
    if not groups:
        raise DataError(f"no query has a relevant document in its candidate window ({dropped} queries "
                        "logged): the judgments are empty or do not match this index's document ids")
    kept = np.concatenate(groups)
    matrix = log.matrix[kept]
    all_nan = [n for j, n in enumerate(log.feature_names) if np.isnan(matrix[:, j]).all()]
    if all_nan:
        raise DataError(f"feature(s) {', '.join(repr(n) for n in all_nan)} are NaN for every training row "
                        "(the index has no values for them): remove them from the index's feature list")
    # re-index groups onto the compacted arrays
    offsets = np.cumsum([0] + [len(g) for g in groups])
    new_groups = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(groups))]
    return TrainingData(matrix, log.labels[kept].astype(np.int32), qids, new_groups, times, log.doc_ids[kept],
                        list(log.feature_names), dropped)


def split_queries(data: TrainingData, valid_fraction: float, seed: int) -> tuple[list[int], list[int], str]:
    """(train group indices, valid group indices, how): by time if every query has one, else random by query."""
    n = len(data.groups)
    if not 0 < valid_fraction < 1:
        raise HybridRankError(f"valid fraction must be in (0, 1), got {valid_fraction}")
    n_valid = max(1, round(n * valid_fraction))
    if n - n_valid < 1:
        raise DataError(f"only {n} usable quer{'y' if n == 1 else 'ies'}: too few to hold out a validation set")
    if all(t is not None for t in data.query_times):
        order = sorted(range(n), key=lambda i: (data.query_times[i], data.qids[i]))
        return sorted(order[: n - n_valid]), sorted(order[n - n_valid :]), "time"
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=n_valid, random_state=seed)
    train_idx, valid_idx = next(splitter.split(np.zeros(n), groups=np.arange(n)))
    return sorted(int(i) for i in train_idx), sorted(int(i) for i in valid_idx), "query"


def _rows(data: TrainingData, group_ids: list[int]) -> np.ndarray:
    return np.concatenate([data.groups[g] for g in group_ids])


# -- LightGBM -------------------------------------------------------------------------------------
def _train_lightgbm(data: TrainingData, train_g: list[int], valid_g: list[int], cfg: TrainConfig
                    ) -> tuple[Callable[[Path], None], Callable[[np.ndarray], np.ndarray], list[float], dict[str, Any]]:
    import lightgbm as lgb

    params = {**LIGHTGBM_DEFAULTS, "seed": cfg.seed, **cfg.lightgbm_params}
    tr, va = _rows(data, train_g), _rows(data, valid_g)
    train_set = lgb.Dataset(data.matrix[tr], data.labels[tr], group=[len(data.groups[g]) for g in train_g],
                            feature_name=[_lgb_name(n) for n in data.feature_names], free_raw_data=False)
    valid_set = lgb.Dataset(data.matrix[va], data.labels[va], group=[len(data.groups[g]) for g in valid_g],
                            reference=train_set)
    evals: dict[str, Any] = {}
    cv_ndcg: float | None = None
    if cfg.cv_folds > 1 and len(train_g) >= 2 * cfg.cv_folds:
        # the number of trees from k-fold CV by query over the training queries: steadier than one
        # small validation split; the held-out queries then only measure
        cv = lgb.cv(params, train_set, num_boost_round=cfg.num_boost_round, nfold=cfg.cv_folds,
                    stratified=False, seed=cfg.seed,
                    callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
        curve = np.asarray(next(v for k, v in cv.items() if k.endswith("ndcg@10-mean")), dtype=np.float64)
        best = int(np.argmax(curve)) + 1
        cv_ndcg = float(curve[best - 1])
        booster = lgb.train(params, train_set, num_boost_round=best, valid_sets=[valid_set],
                            valid_names=["valid"], callbacks=[lgb.record_evaluation(evals)])
    else:
        booster = lgb.train(params, train_set, num_boost_round=cfg.num_boost_round, valid_sets=[valid_set],
                            valid_names=["valid"], callbacks=[
                                lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
                                lgb.record_evaluation(evals)])
        best = booster.best_iteration or booster.current_iteration()
    valid_ndcg = float(evals["valid"]["ndcg@10"][best - 1])
    held_out = booster  # validation metrics come from the model that never saw the validation queries

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(held_out.predict(matrix, num_iteration=best))

    if cfg.refit:  # the validation queries chose the number of trees; now learn from every query
        everything = _rows(data, sorted(train_g + valid_g))
        full_set = lgb.Dataset(data.matrix[everything], data.labels[everything],
                               group=[len(data.groups[g]) for g in sorted(train_g + valid_g)],
                               feature_name=[_lgb_name(n) for n in data.feature_names])
        booster = lgb.train(params, full_set, num_boost_round=best)
    gains = [float(g) for g in booster.feature_importance(importance_type="gain", iteration=best)]
    info = {"best_iteration": int(best), "params": params, "refit_on_all_queries": cfg.refit,
            "lightgbm_valid_ndcg@10": valid_ndcg, "cv_folds": cfg.cv_folds if cv_ndcg is not None else 0,
            "lightgbm_cv_ndcg@10": cv_ndcg}

    def save(path: Path) -> None:
        booster.save_model(str(path), num_iteration=best)

    return save, score, gains, info


def _lgb_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


# -- ListNet (torch) --------------------------------------------------------------------------------
def _train_listnet(data: TrainingData, train_g: list[int], valid_g: list[int], cfg: TrainConfig
                   ) -> tuple[Callable[[Path], None], Callable[[np.ndarray], np.ndarray], list[float],
                              dict[str, Any], dict[str, Any]]:
    import torch
    from sklearn.metrics import ndcg_score

    from ltr.training.model import listnet_scorer

    torch.manual_seed(cfg.seed)
    tr = _rows(data, train_g)
    x_train = data.matrix[tr]
    medians = np.nanmedian(x_train, axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    filled = np.where(np.isnan(x_train), medians, x_train)
    means = filled.mean(axis=0)
    stds = filled.std(axis=0)
    stds = np.where(stds > 1e-12, stds, 1.0)
    prep = {"medians": medians.tolist(), "means": means.tolist(), "stds": stds.tolist()}

    def standardise(x: np.ndarray) -> np.ndarray:
        return (np.where(np.isnan(x), medians, x) - means) / stds

    def padded(group_ids: list[int]) -> tuple[Any, Any, Any]:
        longest = max(len(data.groups[g]) for g in group_ids)
        f = data.matrix.shape[1]
        xs = np.zeros((len(group_ids), longest, f), dtype=np.float32)
        ys = np.zeros((len(group_ids), longest), dtype=np.float32)
        mask = np.zeros((len(group_ids), longest), dtype=bool)
        for i, g in enumerate(group_ids):
            rows = data.groups[g]
            xs[i, : len(rows)] = standardise(data.matrix[rows])
            ys[i, : len(rows)] = data.labels[rows]
            mask[i, : len(rows)] = True
        return torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(mask)

    model = torch.nn.Sequential()
    model.add_module("hidden", torch.nn.Linear(data.matrix.shape[1], cfg.listnet_hidden))
    model.add_module("relu", torch.nn.ReLU())
    model.add_module("out", torch.nn.Linear(cfg.listnet_hidden, 1))
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.listnet_lr, weight_decay=1e-4)
    x_tr, y_tr, m_tr = padded(train_g)
    neg_inf = torch.tensor(-1e9)

    def weights() -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().astype(np.float64).copy() for k, v in model.state_dict().items()}

    def valid_ndcg(w: dict[str, np.ndarray]) -> float:
        scorer = listnet_scorer(w, prep)
        values = []
        for g in valid_g:
            rows = data.groups[g]
            if len(rows) < 2:
                continue
            values.append(ndcg_score([data.labels[rows]], [scorer(data.matrix[rows])], k=10))
        return float(np.mean(values)) if values else 0.0

    best_w, best_ndcg, best_epoch, stale = weights(), -1.0, 0, 0
    for epoch in range(1, cfg.listnet_epochs + 1):
        model.train()
        optimiser.zero_grad()
        scores = model(x_tr).squeeze(-1)
        # ListNet top-one loss: cross entropy between softmax(labels) and softmax(scores), per query
        target = torch.softmax(torch.where(m_tr, y_tr, neg_inf), dim=1)
        log_p = torch.log_softmax(torch.where(m_tr, scores, neg_inf), dim=1)
        loss = -(target * torch.where(m_tr, log_p, torch.zeros_like(log_p))).sum(dim=1).mean()
        loss.backward()
        optimiser.step()
        current = valid_ndcg(weights())
        if current > best_ndcg + 1e-6:
            best_w, best_ndcg, best_epoch, stale = weights(), current, epoch, 0
        else:
            stale += 1
            if stale >= cfg.listnet_patience:
                break
    final = listnet_scorer(best_w, prep)
    # importance: mean absolute first-layer weight on standardised inputs
    gains = np.abs(best_w["hidden.weight"]).sum(axis=0).tolist()
    info = {"best_epoch": best_epoch, "hidden": cfg.listnet_hidden, "lr": cfg.listnet_lr}

    def save(path: Path) -> None:
        torch.save({"state_dict": {k: torch.from_numpy(v) for k, v in best_w.items()},
                    "hidden": cfg.listnet_hidden}, path)

    return save, final, gains, info, prep


# -- driver -----------------------------------------------------------------------------------------
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
    data = prepare(log)
    train_g, valid_g, split_how = split_queries(data, cfg.valid_fraction, cfg.seed)
    prep: dict[str, Any] = {}
    if cfg.model_type == "lightgbm":
        save, score, gains, info = _train_lightgbm(data, train_g, valid_g, cfg)
    else:
        save, score, gains, info, prep = _train_listnet(data, train_g, valid_g, cfg)

    metrics = {**validation_metrics(data, valid_g, score), "train_queries": len(train_g),
               "valid_queries": len(valid_g), "dropped_queries_no_relevant": data.dropped_queries,
               "validation_split": split_how, **{k: v for k, v in info.items() if k != "params"}}
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
    )
    importance = sorted(zip(data.feature_names, gains, strict=True), key=lambda t: -t[1])
    target = Path(out_dir) if out_dir is not None else (model_store(model_id) if model_store else Path(model_id))
    write_model_dir(target, contract, save,
                    extras=lambda d: plot_importance(importance, d / IMPORTANCE_PNG, title=model_id))
    return TrainResult(target, contract, importance, data.dropped_queries, len(train_g), len(valid_g))


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
