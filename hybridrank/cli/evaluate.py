"""``hybridrank evaluate``: every retrieval mode on one split of a collection, in one table.

It reads an existing index (it never indexes): the legs are retrieved once per query, fused per
mode, scored with ranx, and each mode is tested against the baseline with paired tests.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hybridrank.cli.support import handle_errors, settings_from
from hybridrank.cli.train import model_options
from hybridrank.errors import IndexNotFound

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch


MODE_CHOICES = ("bm25", "knn", "es", "rrf", "linear")  # mirrors connector.retrieval.retriever.MODES (kept light)


def _parse_modes(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    modes = [m.strip() for m in value.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODE_CHOICES]
    if unknown or not modes:
        raise click.BadParameter(f"unknown mode(s) {', '.join(unknown) or '(none)'}; "
                                 f"choose from {','.join(MODE_CHOICES)}")
    return list(dict.fromkeys(modes))


def cluster_version(client: Elasticsearch) -> str:
    """The version of the node we talk to (``GET /`` is not available on every node)."""
    try:
        info = client.nodes.info(node_id="_local", metric="_none", filter_path="nodes.*.version")
        versions = {node.get("version", "?") for node in dict(info).get("nodes", {}).values()}
        return ",".join(sorted(versions)) or "unknown"
    except Exception:  # the version is informative only; never fail an evaluation for it
        return "unknown"


@click.command()
@click.option("--collection", "collection_spec", required=True,
              help="A BEIR-layout folder (corpus.jsonl[.gz], queries.jsonl, qrels/<split>.tsv) or beir:<name>.")
@click.option("--index", "index_name", required=True, help="The index holding the collection's corpus.")
@click.option("--split", default="test", show_default=True, help="Which qrels/<split>.tsv to evaluate on.")
@click.option("--modes", default=",".join(MODE_CHOICES), show_default=True, callback=_parse_modes,
              help="Comma-separated retrieval modes to compare.")
@click.option("--baseline", default="bm25", show_default=True,
              help="Run the others are tested against (the first mode if it is not evaluated).")
@click.option("--window", type=click.IntRange(1, 10_000), default=None,
              help="Candidate window per leg (default: the index's candidate_window).")
@click.option("--remove-query-doc", is_flag=True,
              help="Drop a document whose id equals the query id (the BEIR ArguAna convention).")
@click.option("--limit-queries", type=click.IntRange(1), default=None,
              help="Evaluate only the first N judged queries of the split (qrels file order).")
@click.option("--stat-test", type=click.Choice(["student", "fisher"]), default="student", show_default=True,
              help="Paired significance test against the baseline.")
@click.option("--max-p", type=click.FloatRange(0, 1, min_open=True), default=0.05, show_default=True,
              help="Significance level for the † mark.")
@click.option("--model", "model_refs", multiple=True,
              help="Add a learned ranker: a model directory, a model id, or 'serving'; repeatable. It scores the "
                   "split's logged features (the live reranker's code).")
@click.option("--cv-folds", type=click.IntRange(0, 20), default=0, show_default=True,
              help="Add learned rankers trained by k-fold cross-validation by query over this split (0: none).")
@click.option("--cv-model-type", "cv_model_types", type=click.Choice(["lightgbm", "listnet"]), multiple=True,
              default=("lightgbm",), show_default=True, help="Model types for --cv-folds; repeatable.")
@model_options
@click.option("--cross-encoder", "cross_encoder_ref", default=None,
              help="Add the run 'ce': this cross-encoder (a directory or a cached name) reranks the top of the "
                   "linear hybrid window.")
@click.option("--cross-encoder-top-n", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="How many top candidates of each window the cross-encoder reranks (the rest keep their order). "
                   "Cost: one transformer pass per candidate, ~10-40 pairs/s on 2 cores.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every number (means, per-query scores, p-values) and the run's context here.")
@click.pass_context
@handle_errors
def evaluate(ctx: click.Context, collection_spec: str, index_name: str, split: str, modes: list[str],
             baseline: str, window: int | None, remove_query_doc: bool, limit_queries: int | None,
             stat_test: str, max_p: float, model_refs: tuple[str, ...], cv_folds: int,
             cv_model_types: tuple[str, ...], params: dict[str, Any], param_grid: list[dict[str, Any]],
             monotone: bool, fold_ensemble: bool,
             fusion_blend: float, cross_encoder_ref: str | None, cross_encoder_top_n: int,
             json_path: Path | None) -> None:
    """NDCG@10, Recall@100 and MRR@10 of every retrieval mode on a collection's split.

    The --cv-folds models train as `hybridrank train` does, with its --param, --param-grid, --monotone,
    --fold-ensemble (LightGBM only) and --fusion-blend."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from connector.client import make_client, translate_errors
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.learned import cross_encoder_run, saved_and_cv_runs
    from ltr.evaluation.metrics import evaluate_runs, retrieve_windows, run_from_windows

    settings = settings_from(ctx)
    collection = load_collection(collection_spec, home=settings.home)
    qrels = collection.qrels(split)
    queries = collection.split_queries(split, limit=limit_queries)
    qrels = {qid: qrels[qid] for qid in queries}

    client = make_client(settings)
    with translate_errors(index_name):
        exists = bool(client.indices.exists(index=index_name))
    if not exists:
        raise click.ClickException(
            f"{IndexNotFound(index_name)}: index the collection first, e.g. "
            f"`hybridrank index --index {index_name} ...` with {collection.corpus_path}"
        )
    config = settings.index(index_name)
    retriever = Retriever(client, index_name, config, embedder_from_settings(settings))

    err = Console(stderr=True)
    ce_base = "linear"  # ltr.cross_encoder.fine_tune.HYBRID_MODE, kept light here
    retrieval_modes = modes + ([ce_base] if cross_encoder_ref and ce_base not in modes else [])
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(f"retrieving {len(queries)} queries", total=len(queries))
        try:
            windows = retrieve_windows(retriever, queries, retrieval_modes, window=window,
                                       on_batch=lambda n: progress.advance(task, n))
        except IndexNotFound as exc:
            raise click.ClickException(f"{exc}: create it first with `hybridrank index`") from exc
    runs = {mode: run_from_windows(windows[mode], remove_query_doc=remove_query_doc) for mode in modes}
    if model_refs or cv_folds:
        runs.update(saved_and_cv_runs(settings, retriever, collection, split, queries,
                                      request_time=dt.datetime.now(dt.UTC), window=window, model_refs=model_refs,
                                      cv_folds=cv_folds, cv_model_types=cv_model_types,
                                      cv_options={"lightgbm_params": params, "param_grid": param_grid,
                                                  "monotone": monotone,
                                                  "fold_ensemble": fold_ensemble, "fusion_blend": fusion_blend},
                                      remove_query_doc=remove_query_doc, say=err.print))
    ce_meta: dict[str, object] = {}
    if cross_encoder_ref:
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as progress:
            task = progress.add_task(f"cross-encoder reranking top {cross_encoder_top_n}", total=len(queries))
            runs["ce"], ce_meta = cross_encoder_run(retriever, queries, windows[ce_base], cross_encoder_ref,
                                                    top_n=cross_encoder_top_n, remove_query_doc=remove_query_doc,
                                                    on_query=lambda n: progress.advance(task, n))
        err.print(f"cross-encoder: {ce_meta['pairs']} pairs in {ce_meta['seconds']:.1f} s "
                  f"({ce_meta['pairs_per_s']:.1f} pairs/s)")
    report = evaluate_runs(qrels, runs, baseline=baseline if baseline in modes else modes[0],
                           stat_test=stat_test, max_p=max_p)
    report.meta = {
        "command": shlex.join(["hybridrank", *_invocation_args(ctx)]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "es_version": cluster_version(client),
        "collection": {"name": collection.name, "path": str(collection.path), "split": split,
                       "queries": len(queries)},
        "index": index_name,
        "window": window or config.candidate_window,
        "modes": modes,
        "models": list(model_refs),
        "cv_folds": cv_folds,
        "cv_options": {"params": params, "param_grid": param_grid, "monotone": monotone,
                       "fold_ensemble": fold_ensemble, "fusion_blend": fusion_blend} if cv_folds else None,
        "cross_encoder": ce_meta or None,
        "remove_query_doc": remove_query_doc,
        "embedding_model": settings.embedding.model,
        "config": settings.source,
    }
    Console().print(report.table(
        title=f"{collection.name} / {split} on index {index_name} (window {report.meta['window']})"))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(report.to_json() + "\n", encoding="utf-8")
        err.print(f"wrote {json_path}")


def _invocation_args(ctx: click.Context) -> list[str]:
    """The command line as parsed (CliRunner and the script alike), for the JSON record."""
    args: list[str] = [ctx.info_name or "evaluate"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if not isinstance(param, click.Option) or value in (None, False, (), {}, []) or value == param.default:
            continue
        flag = param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0]
        if param.is_flag:
            args.append(flag)
        elif isinstance(value, dict):  # --param key=value, parsed into a dict
            for key, item in value.items():
                args.extend([flag, f"{key}={json.dumps(item)}"])
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):  # --param-grid's JSON
            args.extend([flag, json.dumps(value)])
        elif param.multiple:  # a repeatable option: the flag once per value, as it was typed
            for item in value:
                args.extend([flag, str(item)])
        else:
            args.extend([flag, ",".join(value) if isinstance(value, list) else str(value)])
    return args
