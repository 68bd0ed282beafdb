"""``hybridrank train``: log features (or read a log), train a ranker, save (and register) the model."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hybridrank.cli.models import GATE_HELP, gate_lines, gate_options, held_out_from
from hybridrank.cli.support import handle_errors, parse_request_time, progress_bar, settings_from

if TYPE_CHECKING:
    from rich.console import Console

    from hybridrank.config import Settings
    from ltr.evaluation.held_out import HeldOutSource
    from ltr.training.registry import ModelRegistry
    from ltr.training.train import TrainConfig, TrainResult

MODEL_TYPES = ("lightgbm", "listnet")  # mirrors ltr.training.train.MODEL_TYPES (kept light)
LABEL_POLICIES = ("debiased", "naive")  # mirrors ltr.clicks.training_set.LABEL_POLICIES
F = TypeVar("F", bound=Callable[..., Any])


def _parse_params(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {raw!r}")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _parse_grid(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[dict[str, Any]]:
    if value is None:
        return []
    try:
        grid = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(grid, list) or not grid or not all(isinstance(item, dict) for item in grid):
        raise click.BadParameter("expected a non-empty JSON list of objects, e.g. '[{\"num_leaves\": 31}]'")
    return grid


def model_options(func: F) -> F:
    """How a model is trained beyond its type: ``train``'s options, also those of ``evaluate --cv-folds``'s models."""
    options = [
        click.option("--param", "params", multiple=True, callback=_parse_params,
                     help="A LightGBM parameter, key=value (JSON value); repeatable. E.g. num_leaves=31."),
        click.option("--param-grid", "param_grid", callback=_parse_grid, default=None,
                     help="LightGBM: parameter sets, a JSON list of objects (each over the defaults and --param), "
                     "compared by the tree-count CV inside the training queries; the best one trains the model. "
                     "E.g. '[{\"num_leaves\": 31}, {\"num_leaves\": 7, \"min_data_in_leaf\": 50}]'."),
        click.option("--monotone/--no-monotone", default=False, show_default=True,
                     help="LightGBM: monotone constraints where a feature's direction is known (more evidence "
                     "never lowers a score, a worse rank never raises it); with the transfer feature set it makes "
                     "a model that carries to other collections (docs/ltr.md)."),
        click.option("--fold-ensemble/--no-fold-ensemble", default=False, show_default=True,
                     help="LightGBM: save the mean of one booster per CV fold (each with the CV's tree count) "
                     "instead of one refit booster: steadier on few queries, and k times the trees to score on "
                     "every search (docs/ltr.md). Needs the tree-count CV (train's --cv-folds >= 2)."),
        click.option("--fusion-blend", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                     help="Score each window as (1 - w) x the model + w x linear fusion (both min-max over the "
                     "window), w stored in the model's contract: keeps a model near fusion on an index it was "
                     "not trained on (docs/ltr.md); 0 = the model alone."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command(epilog=GATE_HELP + " With --register and --collection, the gate judges the model on that "
               "collection's --held-out-split (default test).")
@click.option("--collection", default=None, help="Collection folder (BEIR layout) or beir:<name>.")
@click.option("--index", "index_name", required=True, help="Index the collection was loaded into.")
@click.option("--train-split", default="train", show_default=True, help="Qrels split to train on.")
@click.option("--features-log", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Train from this Parquet (from `features log`) instead of logging now.")
@click.option("--valid-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Share of queries held out for validation / early stopping.")
@click.option("--model-type", type=click.Choice(MODEL_TYPES), default="lightgbm", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model directory to write (default: the model store <home>/models/<index>/<model id>).")
@click.option("--register", is_flag=True,
              help="Put the model in the store (if --out is elsewhere) and promote it to serve the index, if "
              "it passes the promotion gate (see below).")
@click.option("--variant", default="default", show_default=True, help="Variant promoted by --register.")
@click.option("--window", type=click.IntRange(1, 10_000), default=None, help="Candidate window per leg.")
@click.option("--limit-queries", type=click.IntRange(1), default=None, help="Train on the first N queries only.")
@click.option("--request-time", callback=parse_request_time, default=None,
              help="Timestamp features are computed at when logging (ISO-8601; default: now).")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--num-boost-round", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--early-stopping", type=click.IntRange(1), default=300, show_default=True,
              help="Stop after this many rounds without a better validation ndcg@10.")
@click.option("--cv-folds", type=click.IntRange(0, 20), default=5, show_default=True,
              help="LightGBM: choose the number of trees by k-fold CV by query (0: early stopping on the "
              "validation split).")
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="LightGBM: after early stopping, retrain on train + validation queries with that many trees.")
@click.option("--base-score", default="none", show_default=True,
              help="LightGBM: boost from --base-score-scale x this logged feature (e.g. fused_linear: the trees "
              "learn a correction to linear fusion); none = from 0.")
@click.option("--base-score-scale", "base_scales", type=click.FloatRange(0, min_open=True), multiple=True,
              default=(10.0,), show_default=True, help="Scale of --base-score; repeated: chosen by the CV.")
@click.option("--from-events", is_flag=True,
              help="Train from the logged impressions and clicks of --index (the events index), with the "
              "feature snapshots the endpoint logged; validation = the latest --valid-fraction of the time.")
@click.option("--labels", type=click.Choice(LABEL_POLICIES), default="debiased", show_default=True,
              help="With --from-events: click labels corrected for position bias (debiased) or raw click "
              "rates (naive).")
@click.option("--since", callback=parse_request_time, default=None,
              help="With --from-events: only events at or after (ISO-8601).")
@click.option("--until", callback=parse_request_time, default=None,
              help="With --from-events: only events before (ISO-8601).")
@click.option("--dask", "on_dask", is_flag=True,
              help="LightGBM on a Dask cluster ([training] dask_scheduler, else a LocalCluster of dask_workers "
              "processes): exactly --num-boost-round trees, no CV or early stopping. Needs hybridrank[dask].")
@click.option("--log-workers", type=click.IntRange(1, 256), default=None,
              help="Processes computing the feature log (default: [training] log_workers).")
@model_options
@gate_options
@click.pass_context
@handle_errors
def train(ctx: click.Context, collection: str | None, index_name: str, train_split: str,
          features_log: Path | None, valid_fraction: float, model_type: str, out: Path | None, register: bool,
          variant: str, window: int | None, limit_queries: int | None, request_time: datetime | None,
          seed: int, params: dict[str, Any], num_boost_round: int, early_stopping: int, cv_folds: int,
          refit: bool, base_score: str, base_scales: tuple[float, ...], param_grid: list[dict[str, Any]],
          monotone: bool, fold_ensemble: bool,
          fusion_blend: float, from_events: bool, labels: str,
          since: datetime | None, until: datetime | None, on_dask: bool, log_workers: int | None,
          **gate: Any) -> None:
    """Train a learning-to-rank model (LightGBM lambdarank or ListNet) on judgments or on logged clicks."""
    from rich.console import Console

    from ltr.training.collection_log import log_collection_split
    from ltr.training.feature_log import read_feature_log
    from ltr.training.promotion import check_log_serves
    from ltr.training.registry import ModelRegistry
    from ltr.training.train import TrainConfig, train_model

    settings = settings_from(ctx)
    console = Console()
    registry = ModelRegistry.from_settings(settings)
    cfg = TrainConfig(model_type=model_type, valid_fraction=valid_fraction, seed=seed, lightgbm_params=params,
                      num_boost_round=num_boost_round, early_stopping_rounds=early_stopping,
                      cv_folds=cv_folds, refit=refit, fixed_rounds=on_dask,
                      dask_scheduler=settings.training.dask_scheduler if on_dask else None,
                      dask_workers=settings.training.dask_workers,
                      base_score_feature=None if base_score == "none" else base_score,
                      base_score_scales=list(base_scales) or [1.0], monotone=monotone,
                      fold_ensemble=fold_ensemble, fusion_blend=fusion_blend, param_grid=param_grid)
    if on_dask and model_type != "lightgbm":
        raise click.UsageError("--dask trains LightGBM only")
    if from_events:
        if features_log is not None or collection is not None:
            raise click.UsageError("--from-events trains from the events index: drop --collection/--features-log")
        result = _train_from_events(settings, console, index_name, out=out, config=cfg, labels=labels,
                                    since=since, until=until, register=register)
        _report(console, result, model_type, title="validation (click labels of the later period)")
        _finish(settings, console, registry, result, index_name, register=register, variant=variant,
                held_out=held_out_from(gate), force=gate["force"])
        return
    if features_log is None and collection is None:
        raise click.UsageError("give --collection (to log features now), --features-log, or --from-events")
    with tempfile.TemporaryDirectory(prefix="hybridrank-train-") as tmp:
        log_path = features_log
        if log_path is None:
            assert collection is not None
            moment = request_time or datetime.now(UTC)
            with progress_bar("logging features") as bar:
                summary = log_collection_split(settings, collection=collection, split=train_split,
                                               index=index_name, out=Path(tmp) / "features.parquet",
                                               window=window, limit_queries=limit_queries, request_time=moment,
                                               on_batch=bar.advance, on_total=bar.set_total,
                                               workers=log_workers)
            console.print(f"logged {summary.rows} rows for {summary.queries} queries "
                          f"({summary.queries_per_second:.1f} queries/s)")
            log_path = summary.path
        log = read_feature_log(log_path)
        if register:  # refuse early: a model that could not serve this index is not worth training
            check_log_serves(settings, index_name, log)
        result = train_model(log, out, config=cfg,
                             training_meta={"features_log": str(features_log) if features_log else None},
                             model_store=lambda model_id: registry.model_dir(index_name, model_id))
    _report(console, result, model_type, title="validation (judgments inside the candidate windows)")
    _finish(settings, console, registry, result, index_name, register=register, variant=variant,
            held_out=held_out_from(gate, default_collection=collection), force=gate["force"])


def _train_from_events(settings: Settings, console: Console, index_name: str, *, out: Path | None,
                       config: TrainConfig, labels: str, since: datetime | None, until: datetime | None,
                       register: bool) -> TrainResult:
    """Train from the index's events (``ltr.clicks.training_set.train_from_events``) and say what from."""
    from ltr.clicks.training_set import train_from_events

    run = train_from_events(settings, index_name, out, config=config, labels=labels, since=since, until=until,
                            register=register)
    if run.note:
        console.print(f"[yellow]note[/]: {run.note}")
    ts = run.training_set
    console.print(f"{ts.impressions} impressions ({ts.impressions_without_features} without "
                  f"feature snapshots), {run.clicks} clicks, {run.orphan_clicks} orphan clicks; "
                  f"{labels} labels {ts.label_counts}; time cut {ts.time_cut.isoformat()}; "
                  f"{ts.dropped_groups} query groups without an above-average document dropped")
    return run.result


def _report(console: Console, result: TrainResult, model_type: str, *, title: str) -> None:
    from rich.table import Table

    metrics = result.contract.metrics
    if result.dropped_queries:
        console.print(f"dropped {result.dropped_queries} queries with no relevant document in their window")
    console.print(f"trained {result.contract.model_type} on {result.train_queries} queries, validated on "
                  f"{result.valid_queries} (split by {metrics['validation_split']})")
    table = Table(title=title)
    table.add_column("ranker")
    table.add_column("NDCG@10", justify="right")
    table.add_column("MRR@10", justify="right")
    for name, prefix in (("model", "valid"), ("RRF", "valid_fused_rrf"), ("linear", "valid_fused_linear")):
        if f"{prefix}_window_ndcg@10" in metrics:
            table.add_row(name, f"{metrics[f'{prefix}_window_ndcg@10']:.4f}",
                          f"{metrics[f'{prefix}_window_mrr@10']:.4f}")
    console.print(table)
    imp = Table(title="feature importance" + (" (gain)" if model_type == "lightgbm" else " (|first-layer weights|)"))
    imp.add_column("feature")
    imp.add_column("importance", justify="right")
    total = sum(v for _, v in result.importance) or 1.0
    for name, value in result.importance:
        imp.add_row(name, f"{value:.1f} ({100 * value / total:.1f}%)")
    console.print(imp)


def _finish(settings: Settings, console: Console, registry: ModelRegistry, result: TrainResult, index_name: str,
            *, register: bool, variant: str, held_out: HeldOutSource | None, force: bool) -> None:
    from ltr.training.promotion import promote_model, store_model

    model_id = result.contract.model_id
    if not register:
        console.print(f"model {model_id} written to {result.model_dir}")
        return
    stored = store_model(registry, index_name, model_id, result.model_dir)
    console.print(f"model {model_id} written to {result.model_dir}"
                  + (f" (stored as {stored})" if stored.resolve() != result.model_dir.resolve() else ""))
    # loads the stored copy: contract against the live features, the gate, checksum, then compiles
    promotion = promote_model(settings, index_name, model_id, variant, held_out=held_out, force=force,
                              say=console.print)
    for line in gate_lines(promotion.gate):
        console.print(line)
    change = promotion.change
    console.print(f"promoted {change.current} to serve index {index_name!r} variant {variant!r}"
                  + (f" (was {change.previous})" if change.previous else ""))
    if promotion.compiled:
        console.print(promotion.compiled)
