"""``hybridrank index``: create an index (if missing) and load documents from JSONL, CSV or a BEIR folder."""

from __future__ import annotations

import itertools
from typing import Any

import click

from hybridrank.cli.support import handle_errors, settings_from

FORMAT_CHOICES = ("auto", "jsonl", "csv", "beir")  # mirrors connector.indexing.documents.FORMATS (kept light)
ANALYZER_CHOICES = ("auto", "english", "hybridrank_english", "english_hunspell", "standard")
MAX_LISTED_FAILURES = 20


@click.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--index", "index_name", required=True, help="Index to create (if missing) and load.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="auto", show_default=True,
              help="Input format; auto = from the extension (.jsonl[.gz], .csv[.gz]) or beir for a folder.")
@click.option("--recreate", is_flag=True, help="Delete the index first if it exists.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Load only the first N records.")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=64, show_default=True,
              help="Documents per embedding batch and bulk request.")
@click.option("--analyzer", type=click.Choice(ANALYZER_CHOICES), default=None,
              help="Text analyzer of a new index (default: the index config's, 'auto' unless set).")
@click.option("--merge/--no-merge", default=True, show_default=True,
              help="Force-merge the index into one segment per shard after the load (if it has more): faster "
                   "searches (fewer per-segment scorers and kNN graphs). Leave it off for an index that keeps "
                   "taking writes.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
@handle_errors
def index(ctx: click.Context, path: str, index_name: str, fmt: str, recreate: bool, limit: int | None,
          batch_size: int, analyzer: str | None, merge: bool, no_progress: bool) -> None:
    """Load PATH (a JSONL/CSV file or a BEIR folder) into an index: BM25 fields plus an embedded vector.

    Re-running is safe: documents are upserted by id and unchanged ones are skipped without
    re-embedding. Documents that cannot load are listed with file:line and the reason; the rest load.
    """
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.indexing.documents import count_records, detect_format, read_documents
    from connector.indexing.index_setup import create_index
    from connector.indexing.indexer import index_documents, merge_segments
    from connector.node.capabilities import detect

    settings = settings_from(ctx)
    config = settings.index(index_name)
    chosen_format = detect_format(path) if fmt == "auto" else fmt
    updates: dict[str, Any] = {}
    if analyzer:
        updates["analyzer"] = analyzer
    if chosen_format == "beir":
        updates["id_field"] = "_id"
    if updates:
        config = config.model_copy(update=updates)

    client = make_client(settings)
    info = detect(client)  # what the cluster has; also fails fast if it is down
    embedder = embedder_from_settings(settings)
    setup = create_index(client, index_name, config, dims=embedder.dimension, info=info, recreate=recreate)
    verb = "created" if setup.created else "using existing"
    click.echo(f"{verb} index {index_name}: analyzer {setup.analyzer} ({setup.reason}), {setup.dims}-d vectors",
               err=True)

    total = count_records(path, chosen_format)
    docs = read_documents(path, chosen_format)
    if limit is not None:
        docs = itertools.islice(docs, limit)
        total = min(total, limit)
    report = index_documents(client, index_name, config, embedder, docs, batch_size=batch_size,
                             progress=not no_progress, total=total)

    click.echo(report.summary())
    for failure in report.failed[:MAX_LISTED_FAILURES]:
        doc = f" [{failure.doc_id}]" if failure.doc_id else ""
        click.echo(f"  {failure.where}{doc}: {failure.reason}", err=True)
    if len(report.failed) > MAX_LISTED_FAILURES:
        click.echo(f"  ... and {len(report.failed) - MAX_LISTED_FAILURES} more failures", err=True)
    if report.indexed + report.skipped_unchanged == 0:
        raise click.ClickException("nothing was loaded" + ("" if report.failed else f": no documents in {path}"))
    if merge:  # also an index loaded before loads ended merged: a re-run merges it
        before, after = merge_segments(client, index_name)
        if after < before:
            click.echo(f"merged {index_name}'s {before} segments into {after}", err=True)

