"""LightGBM lambdarank: gradient-boosted trees trained on whole query groups (``model_type = "lightgbm"``).

LightGBM picks its number of trees by k-fold cross-validation by query over the training queries
(its own ndcg@10, early stopping), or with ``cv_folds=0`` by early stopping on the validation split;
then (``refit``, the default) it retrains on every query with that many trees. On SciFact one small
validation split chose anywhere from 8 to 380 trees; CV is steadier. The validation scores come from
the model that never saw the validation queries. lightgbm is imported inside the function only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import DataError
from ltr.training.base_score import BaseScore

if TYPE_CHECKING:
    from ltr.training.training_data import TrainingData

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
    # Linear gains, as the metric we report (ranx/trec_eval NDCG: gain = grade) instead of LightGBM's
    # 2^grade - 1: the same for binary judgments (SciFact, ArguAna), on graded Cranfield (grades 1-4)
    # 5-fold CV NDCG@10 .386 -> .397 (docs/ltr.md, issue 14).
    "label_gain": list(range(31)),
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}


# Features whose direction is known: more evidence never makes a document less relevant (+1), a
# worse rank never makes it more relevant (-1). Query-level features (the same for every candidate of
# a query) have no direction and are left free.
MONOTONE: dict[str, int] = {
    "bm25_best_fields": 1, "dense_cosine": 1, "bm25_best_fields_ratio": 1, "dense_cosine_gap": 1,
    "rank_bm25": -1, "rank_knn": -1, "found_by_both": 1, "fused_rrf": 1, "fused_linear": 1,
    "bm25_zscore": 1, "dense_zscore": 1, "bm25_phrase": 1, "matched_terms": 1, "matched_terms_ratio": 1,
}


FREE = frozenset({"bm25_top_gap", "dense_top_gap", "bm25_phrase_ratio"})


def monotone_constraints(feature_names: list[str]) -> list[int]:
    """LightGBM's ``monotone_constraints`` for these features; a per-field BM25 (``bm25_<field>``) is +1, and a
    window-normalised score (``minmax_<score>``) has its score's direction."""
    from features.bm25_field import PREFIX as BM25_FIELD
    from features.window_minmax import PREFIX as MINMAX

    def direction(name: str) -> int:
        name = name.removeprefix(MINMAX)
        return MONOTONE.get(name, 1 if name.startswith(BM25_FIELD) and name not in FREE else 0)

    return [direction(n) for n in feature_names]


def effective_params(data: TrainingData, seed: int, overrides: Mapping[str, Any], monotone: bool) -> dict[str, Any]:
    """``LIGHTGBM_DEFAULTS`` with the seed, ``overrides`` and (``monotone``) the known directions."""
    params = {**LIGHTGBM_DEFAULTS, "seed": seed, **overrides}
    if monotone:
        params["monotone_constraints"] = monotone_constraints(list(data.feature_names))
        # "advanced" constrains each split less than the default "basic" (LightGBM's docs): the monotone
        # transfer configuration of docs/ltr.md was measured with it
        params.setdefault("monotone_constraints_method", "advanced")
    return params


def train_lambdarank(data: TrainingData, train_g: list[int], valid_g: list[int], *, seed: int,
                     lightgbm_params: Mapping[str, Any], num_boost_round: int, early_stopping_rounds: int,
                     cv_folds: int, refit: bool, monotone: bool = False,
                     param_grid: Sequence[Mapping[str, Any]] = (), fixed_rounds: bool = False,
                     base_feature: str | None = None, base_scales: Sequence[float] = (1.0,),
                     fold_ensemble: bool = False,
                     ) -> tuple[Callable[[Path], None], Callable[[np.ndarray], np.ndarray], list[float],
                                dict[str, Any]]:
    """(save, validation scorer, gain per feature, info); ``lightgbm_params`` override ``LIGHTGBM_DEFAULTS``.

    ``param_grid``: parameter sets (each over the rest) compared by the k-fold CV by query over the
    training queries; the best CV NDCG@10 wins (with CV only; the test queries never take part).
    ``fixed_rounds``: exactly ``num_boost_round`` trees (no CV, no early stopping), as on Dask.
    ``base_feature``: boost from ``scale * that feature`` (``ltr.training.base_score``), the scale chosen
    among ``base_scales`` by the same CV (with the grid); ``info["base_score"]`` is the contract's entry.
    ``fold_ensemble``: the saved model is the mean of ``cv_folds`` boosters, each trained with the CV's tree
    count on the other folds of the queries (all of them with ``refit``, else the training queries), instead
    of one booster (``ltr.training.fold_ensemble``); the validation scores still come from a model that never
    saw the validation queries; refused without the CV."""
    import lightgbm as lgb

    params = effective_params(data, seed, lightgbm_params, monotone)
    tr, va = data.rows(train_g), data.rows(valid_g)
    names = list(data.feature_names)
    scales: list[float | None] = list(base_scales) if base_feature is not None else [None]
    if base_feature is not None and base_feature not in names:
        raise DataError(f"base score feature {base_feature!r} is not among the logged features")

    def base(scale: float | None) -> BaseScore | None:
        return BaseScore(base_feature, scale) if base_feature is not None and scale is not None else None

    def init(b: BaseScore | None, rows: np.ndarray) -> np.ndarray | None:
        return b.margin(data.matrix[rows], names) if b is not None else None

    def datasets(b: BaseScore | None) -> tuple[Any, Any]:  # fresh per parameter set (fixed at construction)
        train_set = lgb.Dataset(data.matrix[tr], data.labels[tr], group=[len(data.groups[g]) for g in train_g],
                                feature_name=[_lgb_name(n) for n in names], free_raw_data=False,
                                init_score=init(b, tr))
        valid_set = lgb.Dataset(data.matrix[va], data.labels[va], group=[len(data.groups[g]) for g in valid_g],
                                reference=train_set, init_score=init(b, va))
        return train_set, valid_set

    with_cv = not fixed_rounds and cv_folds > 1 and len(train_g) >= 2 * cv_folds
    if fold_ensemble and not with_cv:
        raise DataError(f"a fold ensemble needs the k-fold CV: cv_folds >= 2 and at least 2 x cv_folds training "
                        f"queries (cv_folds {cv_folds}, {len(train_g)} training queries)")
    chosen_base = base(scales[0])
    evals: dict[str, Any] = {}
    cv_ndcg: float | None = None
    grid_results: list[dict[str, Any]] = []
    if with_cv:
        # the number of trees (and, with a grid, the parameters) from k-fold CV by query over the
        # training queries: steadier than one small validation split; the held-out queries only measure
        chosen: tuple[float, int, dict[str, Any], BaseScore | None] | None = None
        for overrides in param_grid or [{}]:
            for scale in scales:
                trial = {**params, **overrides}
                trial_set, _ = datasets(base(scale))
                cv = lgb.cv(trial, trial_set, num_boost_round=num_boost_round, nfold=cv_folds,
                            stratified=False, seed=seed,
                            callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)])
                curve = np.asarray(next(v for k, v in cv.items() if k.endswith("ndcg@10-mean")), dtype=np.float64)
                trees = int(np.argmax(curve)) + 1
                grid_results.append({"params": dict(overrides), "base_scale": scale,
                                     "cv_ndcg@10": float(curve[trees - 1]), "trees": trees})
                if chosen is None or float(curve[trees - 1]) > chosen[0]:
                    chosen = (float(curve[trees - 1]), trees, trial, base(scale))
        assert chosen is not None
        cv_ndcg, best, params, chosen_base = chosen
        train_set, valid_set = datasets(chosen_base)
        booster = lgb.train(params, train_set, num_boost_round=best, valid_sets=[valid_set],
                            valid_names=["valid"], callbacks=[lgb.record_evaluation(evals)])
    else:
        stopping = [] if fixed_rounds else [lgb.early_stopping(early_stopping_rounds, verbose=False)]
        train_set, valid_set = datasets(chosen_base)
        booster = lgb.train(params, train_set, num_boost_round=num_boost_round, valid_sets=[valid_set],
                            valid_names=["valid"], callbacks=[*stopping, lgb.record_evaluation(evals)])
        best = num_boost_round if fixed_rounds else booster.best_iteration or booster.current_iteration()
    valid_ndcg = float(evals["valid"]["ndcg@10"][best - 1])
    held_out = booster  # validation metrics come from the model that never saw the validation queries

    def score(matrix: np.ndarray) -> np.ndarray:
        raw = np.asarray(held_out.predict(matrix, num_iteration=best))
        return raw + chosen_base.margin(matrix, names) if chosen_base is not None else raw

    ensemble: list[Any] = []
    if fold_ensemble:  # a booster per fold, each with the CV's tree count; saved: their mean
        pool = sorted(train_g + valid_g) if refit else list(train_g)
        for fold in _fold_groups(data, pool, cv_folds):
            rows = data.rows(fold)
            fold_set = lgb.Dataset(data.matrix[rows], data.labels[rows], group=[len(data.groups[g]) for g in fold],
                                   feature_name=[_lgb_name(n) for n in names], init_score=init(chosen_base, rows))
            ensemble.append(lgb.train(params, fold_set, num_boost_round=best))
    elif refit:  # the validation queries chose the number of trees; now learn from every query
        everything = data.rows(sorted(train_g + valid_g))
        full_set = lgb.Dataset(data.matrix[everything], data.labels[everything],
                               group=[len(data.groups[g]) for g in sorted(train_g + valid_g)],
                               feature_name=[_lgb_name(n) for n in names], init_score=init(chosen_base, everything))
        booster = lgb.train(params, full_set, num_boost_round=best)
    members = ensemble or [booster]
    gains = [float(g) for g in np.mean([b.feature_importance(importance_type="gain", iteration=best)
                                         for b in members], axis=0)]
    info = {"best_iteration": int(best), "params": params, "refit_on_all_queries": refit,
            "fold_ensemble": len(ensemble),
            "lightgbm_valid_ndcg@10": valid_ndcg, "cv_folds": cv_folds if cv_ndcg is not None else 0,
            "lightgbm_cv_ndcg@10": cv_ndcg, "param_grid": grid_results,
            "base_score": chosen_base.to_contract() if chosen_base is not None else {}}

    def save(path: Path) -> None:
        if ensemble:
            from ltr.training.fold_ensemble import merge_boosters

            path.write_text(merge_boosters(ensemble, best, data.matrix[va]), encoding="utf-8")
        else:
            booster.save_model(str(path), num_iteration=best)

    return save, score, gains, info


def _fold_groups(data: TrainingData, groups: list[int], folds: int) -> list[list[int]]:
    """The training groups of each of ``folds`` folds of ``groups``: scikit-learn's GroupKFold by query, balanced
    by rows, as LightGBM's own ``cv`` splits a ranking dataset."""
    from sklearn.model_selection import GroupKFold

    sizes = [len(data.groups[g]) for g in groups]
    row_group = np.repeat(np.asarray(groups), sizes)
    out = []
    for train_rows, _ in GroupKFold(n_splits=folds).split(np.zeros(len(row_group)), groups=row_group):
        keep = set(row_group[train_rows].tolist())
        out.append([g for g in groups if g in keep])
    return out


def _lgb_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)
