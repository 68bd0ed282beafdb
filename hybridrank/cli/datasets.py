"""``hybridrank datasets films``: write the project's own test collections (the work: ``ltr.clicks.films``)."""

from __future__ import annotations

from pathlib import Path

import click

from hybridrank.cli.support import handle_errors, settings_from


@click.group()
def datasets() -> None:
    """Write the project's own test collections (BEIR layout) under <home>/datasets."""


@datasets.command("films")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (default: <home>/datasets/films, which `beir:films` finds).")
@click.option("--limit", type=click.IntRange(1), default=None, help="A seeded random sample of N films.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and of the query split.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.3,
              show_default=True, help="Share of queries in qrels/test.tsv.")
@click.pass_context
@handle_errors
def films(ctx: click.Context, out_dir: Path | None, limit: int | None, seed: int, test_fraction: float) -> None:
    """17k dated films (bokeh_sampledata, CC0) with genre queries graded by reviews: a freshness corpus."""
    from rich.console import Console

    from ltr.clicks.films import FILMS_PROFILE, write_films_dataset

    settings = settings_from(ctx)
    target = out_dir or Path(settings.home) / "datasets" / "films"
    with Console(stderr=True).status(f"writing {target}"):
        stats = write_films_dataset(target, limit=limit, seed=seed, test_fraction=test_fraction)
    click.echo(f"wrote {stats.path}: {stats.documents} films released {stats.first_release} .. "
               f"{stats.last_release}, {stats.queries} queries ({stats.train_queries} train, "
               f"{stats.test_queries} test), {stats.judgments} judgments")
    click.echo(f"index it with `hybridrank index --index films {stats.path}` after adding to your config:\n")
    click.echo(FILMS_PROFILE)
