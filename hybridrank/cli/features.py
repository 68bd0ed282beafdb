"""``hybridrank features log``: write the feature log of a collection split to Parquet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hybridrank.cli.support import handle_errors, parse_request_time, progress_bar, settings_from

if TYPE_CHECKING:
    pass


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
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Processes computing the log side by side (default: [training] log_workers, 1).")
@click.pass_context
@handle_errors
def log(ctx: click.Context, collection: str, split: str, index_name: str, out: Path, window: int | None,
        limit_queries: int | None, request_time: datetime | None, batch_size: int, workers: int | None) -> None:
    """Retrieve each query's candidate window and write one row per (query, candidate) with every feature."""
    from ltr.training.collection_log import log_collection_split

    settings = settings_from(ctx)
    with progress_bar("logging features") as bar:
        summary = log_collection_split(settings, collection=collection, split=split, index=index_name, out=out,
                                       window=window, limit_queries=limit_queries,
                                       request_time=request_time or datetime.now(UTC), batch_size=batch_size,
                                       on_batch=bar.advance, on_total=bar.set_total, workers=workers)
    click.echo(f"wrote {summary.rows} rows for {summary.queries} queries to {summary.path} "
               f"({summary.queries_per_second:.1f} queries/s); {len(summary.feature_names)} features: "
               f"{', '.join(summary.feature_names)}")
    if summary.queries_without_judged_candidate:
        click.echo(f"{summary.queries_without_judged_candidate} queries have no relevant document in their window "
                   "(training will drop them)")
