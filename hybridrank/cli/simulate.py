"""``hybridrank simulate``: synthetic users search the endpoint and click (the work: ``ltr.clicks.simulator``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import click

from hybridrank.cli.support import handle_errors, parse_request_time, settings_from
from hybridrank.config import ClickModelName

if TYPE_CHECKING:
    from rich.console import Console

    from ltr.clicks.simulator import SessionResult, SimulationReport


@click.command()
@click.option("--index", "index_name", required=True, help="The index the users search (through the endpoint).")
@click.option("--dataset", "dataset_spec", required=True,
              help="Queries and qrels: a BEIR-layout folder or beir:<name> (e.g. beir:scifact, beir:films).")
@click.option("--split", default="test", show_default=True,
              help="Which qrels/<split>.tsv the users' queries come from.")
@click.option("--sessions", type=click.IntRange(1), default=200, show_default=True, help="Searches to simulate.")
@click.option("--users", type=click.IntRange(1), default=50, show_default=True,
              help="Distinct synthetic users (u0000 ...), sent as X-Hybridrank-User.")
@click.option("--endpoint", "endpoint_url", default="http://127.0.0.1:9280", show_default=True,
              help="URL of `hybridrank serve`.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same users, queries and clicks.")
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True, help="Concurrent sessions.")
@click.option("--freshness-half-life-days", type=click.FloatRange(0, min_open=True), default=None,
              help="Users prefer recent documents, with this half-life (needs the index's timestamp_field).")
@click.option("--freshness-weight", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="How much the recency factor weighs in a result's attractiveness (0 = none, 1 = all).")
@click.option("--as-of", callback=parse_request_time, default=None,
              help="Moment ages are counted from (ISO-8601; default: now). Fix it for reproducible runs.")
@click.option("--click-model", type=click.Choice(get_args(ClickModelName)), default=None,
              help="The simulated users (default: the config's feedback.click_model): DESIGN.md's "
                   "position-based model or a cascade user of the online-LTR literature (ltr.clicks.user_models).")
@click.option("--user-propensity-sd", type=click.FloatRange(0), default=None,
              help="Users differ in how much they click: each gets a fixed propensity (gamma, mean 1) "
                   "with this spread (default: the config's feedback.user_propensity_sd; 0 = identical users).")
@click.option("--no-dwell", is_flag=True, help="Post clicks without dwell times.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report here as JSON.")
@click.pass_context
@handle_errors
def simulate(ctx: click.Context, index_name: str, dataset_spec: str, split: str, sessions: int, users: int,
             endpoint_url: str, seed: int, workers: int, freshness_half_life_days: float | None,
             freshness_weight: float, as_of: datetime | None, click_model: str | None,
             user_propensity_sd: float | None, no_dwell: bool, json_path: Path | None) -> None:
    """Synthetic users search INDEX through the endpoint and click (by the chosen click model).

    Each session is one user issuing one query of the split through the official Elasticsearch
    client; clicks go to POST /_hybridrank/events with the search's X-Request-Id.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ltr.clicks.feedback_loop import collection_top_grade
    from ltr.clicks.simulated_users import FreshnessPreference
    from ltr.clicks.simulator import Simulator, probe_endpoint
    from ltr.clicks.user_models import make_click_model
    from ltr.evaluation.datasets import load_collection

    settings = settings_from(ctx)
    err = Console(stderr=True)
    collection = load_collection(dataset_spec, home=settings.home)
    qrels = collection.qrels(split)
    queries = collection.split_queries(split)
    if not queries:
        raise click.ClickException(f"no queries: {collection.name} split {split!r} judges none")
    config = settings.index(index_name)
    freshness = None
    if freshness_half_life_days is not None:
        if not config.timestamp_field:
            raise click.BadParameter(
                f"index {index_name!r} has no timestamp_field in {settings.source}: set [indices.{index_name}] "
                "timestamp_field to simulate a freshness preference", param_hint="--freshness-half-life-days")
        freshness = FreshnessPreference(freshness_half_life_days, freshness_weight,
                                        as_of=as_of or datetime.now(UTC))
    status = probe_endpoint(endpoint_url, index_name)
    if not status.hybridrank:
        err.print(f"[yellow]warning:[/] {status.url} answers but is not a hybridrank endpoint (no "
                  f"/_hybridrank/health): searches are not reranked and clicks have nowhere to go")
    elif not status.index_profiled:
        err.print(f"[yellow]warning:[/] the endpoint has no ranking profile for index {index_name!r} "
                  f"(profiles: {', '.join(status.profiles) or 'none'}): its searches pass through to "
                  "Elasticsearch unranked and log no impressions, so clicks will be orphans")
    # a freshness preference exists only for the position-based users: it picks them unless a model is named
    name = click_model or ("position-based" if freshness is not None else settings.feedback.click_model)
    spread = settings.feedback.user_propensity_sd if user_propensity_sd is None else user_propensity_sd
    try:
        model = make_click_model(name, freshness=freshness, propensity_sd=spread, dwell=not no_dwell)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--click-model") from exc
    err.print(f"simulated users: {name}" + (f", propensity spread {spread:g}" if spread else ""))
    with Simulator(endpoint_url, index_name, queries, qrels, model, users=users, seed=seed, workers=workers,
                   query_fields=list(config.text_fields), timestamp_field=config.timestamp_field,
                   top_grade=collection_top_grade(collection)) as sim, \
            Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                     TextColumn("{task.fields[clicks]} clicks"), TimeElapsedColumn(), console=err,
                     transient=True) as progress:
        task = progress.add_task(f"{sessions} sessions", total=sessions, clicks=0)
        clicks = 0

        def advance(result: SessionResult) -> None:
            nonlocal clicks
            clicks += len(result.clicks)
            progress.update(task, advance=1, clicks=clicks)

        report = sim.run(sessions, on_session=advance)
    _print_report(report, Console())
    if report.searches_ok and report.searches_unranked == report.searches_ok:
        err.print(f"[yellow]warning:[/] no search was reranked: index {index_name!r} has no ranking profile "
                  "on the endpoint")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        err.print(f"wrote {json_path}")
    if report.searches_ok == 0:
        reasons = "; ".join(f"{r} ({n})" for r, n in report.search_failures.most_common(3))
        raise click.ClickException(f"every search failed: {reasons}")
    if report.clicks_lost:
        reasons = "; ".join(f"{r} ({n})" for r, n in report.lost_reasons.most_common(3))
        raise click.ClickException(f"{report.clicks_lost} of {report.clicks_posted} clicks were lost: {reasons}")


def _print_report(report: SimulationReport, console: Console) -> None:
    from rich.table import Table

    table = Table(title="simulation", show_header=False)
    for label, value in (
        ("sessions / users", f"{report.sessions} / {report.users}"),
        ("searches ok / failed", f"{report.searches_ok} / {report.searches_failed}"),
        ("reranked / unranked", f"{report.searches_reranked} / {report.searches_unranked}"),
        ("clicks posted / accepted / lost",
         f"{report.clicks_posted} / {report.clicks_accepted} / {report.clicks_lost}"),
        ("clicks per search", f"{report.ctr:.3f}"),
        ("post attempts", str(report.post_attempts)),
        ("clicked positions", " ".join(f"{p}:{n}" for p, n in sorted(report.clicked_positions.items())) or "-"),
    ):
        table.add_row(label, value)
    for variant, n in sorted(report.variant_searches.items()):
        table.add_row(f"variant {variant}", f"{n} searches, {report.variant_clicks[variant]} clicks")
    for reason, n in report.search_failures.most_common(5):
        table.add_row("search failed", f"{n}x {reason}")
    for reason, n in report.lost_reasons.most_common(5):
        table.add_row("click lost", f"{n}x {reason}")
    console.print(table)
