"""LightGBM lambdarank on a Dask cluster (``lightgbm.dask``): for feature logs that do not fit one process.

The rows are cut into one partition per worker, each holding whole query groups (a lambdarank group
must never straddle two workers); LightGBM's data-parallel tree learner then builds every tree from
the workers' histograms. ``lightgbm.dask`` has no cross-validation and no early stopping, so the
number of trees is fixed (``num_boost_round``); compare it with the one-process trainer at the same
number of trees (``TrainConfig.fixed_rounds``). The cluster is the scheduler the config names
(``[training] dask_scheduler``), else a ``LocalCluster`` of ``dask_workers`` processes started for the
fit and closed after it. dask and lightgbm are imported inside the functions only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import HybridRankError

if TYPE_CHECKING:
    from ltr.training.training_data import TrainingData


@contextlib.contextmanager
def dask_client(scheduler: str, workers: int) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler`` ("" = a LocalCluster of ``workers`` single-threaded processes)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise HybridRankError("training on Dask needs dask[distributed]: pip install 'hybridrank[dask]'") from exc
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        yield client


def _partitioned(data: TrainingData, groups: list[int], parts: int) -> tuple[Any, Any, Any]:
    """(X, y, group sizes) as Dask arrays with ``parts`` partitions of whole query groups."""
    import dask.array as da

    cuts = np.array_split(np.asarray(groups), max(1, min(parts, len(groups))))
    xs, ys, gs = [], [], []
    for cut in cuts:
        rows = data.rows([int(g) for g in cut])
        xs.append(da.from_array(data.matrix[rows], chunks=(len(rows), data.matrix.shape[1])))
        ys.append(da.from_array(data.labels[rows], chunks=(len(rows),)))
        sizes = np.asarray([len(data.groups[int(g)]) for g in cut])
        gs.append(da.from_array(sizes, chunks=(len(sizes),)))
    return da.concatenate(xs), da.concatenate(ys), da.concatenate(gs)


def fit_dask(data: TrainingData, groups: list[int], params: Mapping[str, Any], num_boost_round: int, *,
             client: Any) -> Any:
    """A LightGBM booster fit on ``groups`` by the Dask cluster behind ``client``."""
    from lightgbm.dask import DaskLGBMRanker

    workers = max(1, len(client.scheduler_info()["workers"]))
    x, y, group = _partitioned(data, groups, workers)
    skip = {"metric", "eval_at", "verbose", "num_threads", "seed", "objective"}
    ranker = DaskLGBMRanker(client=client, objective="lambdarank", n_estimators=num_boost_round,
                            random_state=int(params.get("seed", 0)), verbose=-1, n_jobs=1,
                            **{k: v for k, v in params.items() if k not in skip})
    ranker.fit(x, y, group=group)
    return ranker.to_local().booster_


def train_lambdarank_dask(data: TrainingData, train_g: list[int], valid_g: list[int], *, params: Mapping[str, Any],
                          num_boost_round: int, refit: bool, scheduler: str, workers: int,
                          ) -> tuple[Callable[[Path], None], Callable[[np.ndarray], np.ndarray], list[float],
                                     dict[str, Any]]:
    """(save, validation scorer, gain per feature, info), as ``train_lambdarank`` returns them."""
    with dask_client(scheduler, workers) as client:
        held_out = fit_dask(data, train_g, params, num_boost_round, client=client)
        booster = fit_dask(data, sorted(train_g + valid_g), params, num_boost_round, client=client) \
            if refit else held_out
        where = scheduler or f"LocalCluster({workers} workers)"

    def score(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(held_out.predict(matrix))

    gains = [float(g) for g in booster.feature_importance(importance_type="gain")]
    info = {"best_iteration": num_boost_round, "params": dict(params), "refit_on_all_queries": refit,
            "cv_folds": 0, "trained_on": f"dask: {where}", "fixed_rounds": True}

    def save(path: Path) -> None:
        booster.save_model(str(path))

    return save, score, gains, info
