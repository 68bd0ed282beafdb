"""``hybridrank features log``: write the feature log of a collection split to Parquet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hybridrank.cli.support import handle_errors, settings_from

if TYPE_CHECKING:
    from hybridrank.config import Settings
    from ltr.training.feature_log import LogSummary


def parse_request_time(_ctx: click.Context | None, _param: click.Parameter | None,
                       value: str | None) -> datetime | None:
    """ISO-8601 (naive = UTC); None when not given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO-8601 date/time: {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run_feature_log(
    settings: Settings,
    *,
    collection: str,
    split: str,
    index: str,
    out: Path,
    window: int | None,
    limit_queries: int | None,
    request_time: datetime,
    batch_size: int = 32,
    progress: bool = True,
) -> LogSummary:
    """Retrieve + feature-log a split of a collection (the library side of ``features log``)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from features.pipeline import FeaturePipeline
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.judgments import Judgments
    from ltr.training.feature_log import log_features

    coll = load_collection(collection, home=settings.home)
    judgments = Judgments(coll.qrels(split), name=f"{coll.name}:{split}")
    queries = coll.split_queries(split, limit=limit_queries)
    config = settings.index(index)
    retriever = Retriever(make_client(settings), index, config, embedder_from_settings(settings))
    pipeline = FeaturePipeline.from_config(config)
    meta = {"collection": str(collection), "collection_name": coll.name, "split": split}
    with Progress(TextColumn("logging features"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  disable=not progress, transient=True) as bar:
        task = bar.add_task("log", total=len(queries))
        return log_features(retriever, pipeline, queries, judgments, out, request_time=request_time,
                            window=window, batch_size=batch_size, metadata=meta,
                            on_batch=lambda n: bar.advance(task, n))


@click.group()
def features() -> None:
    """Ranking features: log them for training."""


@features.command("log")
@click.option("--collection", required=True, help="Collection folder (BEIR layout) or beir:<name>.")
@click.option("--split", default="train", show_default=True, help="Qrels split whose queries are logged.")
@click.option("--index", "index_name", required=True, help="Index the collection was loaded into.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Parquet file to write.")
@click.option("--window", type=click.IntRange(1, 10_000), default=None,
              help="Candidate window per leg (default: the index's candidate_window).")
@click.option("--limit-queries", type=click.IntRange(1), default=None, help="Log only the first N queries.")
@click.option("--request-time", callback=parse_request_time, default=None,
              help="Timestamp the features are computed at (ISO-8601; default: now, recorded in the file).")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=32, show_default=True,
              help="Queries per _msearch round trip.")
@click.pass_context
@handle_errors
def log(ctx: click.Context, collection: str, split: str, index_name: str, out: Path, window: int | None,
        limit_queries: int | None, request_time: datetime | None, batch_size: int) -> None:
    """Retrieve each query's candidate window and write one row per (query, candidate) with every feature."""
    settings = settings_from(ctx)
    summary = run_feature_log(settings, collection=collection, split=split, index=index_name, out=out,
                              window=window, limit_queries=limit_queries,
                              request_time=request_time or datetime.now(UTC), batch_size=batch_size)
    click.echo(f"wrote {summary.rows} rows for {summary.queries} queries to {summary.path} "
               f"({summary.queries_per_second:.1f} queries/s); {len(summary.feature_names)} features: "
               f"{', '.join(summary.feature_names)}")
    if summary.queries_without_judged_candidate:
        click.echo(f"{summary.queries_without_judged_candidate} queries have no relevant document in their window "
                   "(training will drop them)")
