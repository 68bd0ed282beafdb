"""``hybridrank ab create|status|report|stop``: ranking experiments and their statistical report.

Each command parses its options, calls one function of ``ltr.experiments`` (``launch.start_experiment``,
``traffic.experiment_traffic``, ``report.experiment_report``, the store's ``stop``) and prints the result.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hybridrank.cli.support import handle_errors, settings_from
from hybridrank.errors import ConfigError

if TYPE_CHECKING:
    from ltr.experiments.results import ExperimentStats
    from ltr.experiments.store import Experiment, ExperimentStore


def _store(ctx: click.Context) -> ExperimentStore:
    from ltr.experiments.store import ExperimentStore

    return ExperimentStore.from_settings(settings_from(ctx))


def _get(store: ExperimentStore, experiment_id: str) -> Experiment:
    try:
        return store.get(experiment_id)
    except ConfigError as exc:  # an unknown id is not a config problem: plain message, exit 1
        raise click.ClickException(str(exc)) from exc


@click.group()
def ab() -> None:
    """Ranking experiments: bucketed A/B or team-draft interleaving (multileaving with three or more
    variants), with a statistical report."""


@ab.command("create")
@click.argument("experiment_id")
@click.option("--index", "index_name", required=True, help="The searched index the experiment applies to.")
@click.option("--mode", type=click.Choice(["ab", "interleave"]), default="ab", show_default=True)
@click.option("--variant", "variant_specs", multiple=True, required=True, metavar="NAME=RANKER[:SHARE]",
              help="Repeat per variant; the first is the control. RANKER: es, hybrid, rrf, model:<id>, "
                   "variant:<name>. Unset shares split the rest equally.")
@click.option("--salt", default=None, help="Bucketing salt (default: random; a new salt reshuffles users).")
@click.option("--description", default="", help="Free text shown in status and the report.")
@click.pass_context
@handle_errors
def create(ctx: click.Context, experiment_id: str, index_name: str, mode: str, variant_specs: tuple[str, ...],
           salt: str | None, description: str) -> None:
    """Create and start experiment EXPERIMENT_ID (the endpoint picks it up without a restart)."""
    from hybridrank.errors import ExperimentRefused
    from ltr.experiments.launch import build_variants, start_experiment

    try:
        variants = build_variants(variant_specs)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--variant") from exc
    try:
        experiment, compiled = start_experiment(settings_from(ctx), experiment_id, index=index_name,
                                                mode=mode,  # type: ignore[arg-type]
                                                variants=variants, salt=salt, description=description)
    except ExperimentRefused as exc:
        raise click.UsageError(str(exc)) from exc
    shares = ", ".join(f"{v.name}={v.ranker}" + (f" ({100 * v.share:g}%)" if mode == "ab" else "")
                       for v in experiment.variants)
    click.echo(f"experiment {experiment.id} running on index {index_name}: {mode}, {shares}")
    for note in compiled:
        click.echo(note)


@ab.command("status")
@click.argument("experiment_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, experiment_id: str | None, as_json: bool) -> None:
    """Experiments (or one), their status and the traffic logged so far."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ltr.experiments.traffic import experiment_traffic

    store = _store(ctx)
    experiments = [_get(store, experiment_id)] if experiment_id else store.all()
    if not experiments:
        click.echo("no experiments yet; create one with `hybridrank ab create`")
        return
    rows, warning = experiment_traffic(settings_from(ctx), experiments)
    if as_json:
        click.echo(json.dumps({"experiments": rows, "warning": warning}, indent=2))
        return
    table = Table()
    for col in ("id", "index", "mode", "variants", "status", "created", "searches", "users", "last search"):
        table.add_column(col)
    for e, row in zip(experiments, rows, strict=True):
        t = row["traffic"]
        variants = "\n".join(f"{v.name}={v.ranker}" + (f" {100 * v.share:g}%" if e.mode == "ab" else "")
                             + (f" · {t['variants'].get(v.name, 0):,} searches" if e.mode == "ab" else "")
                             for v in e.variants)
        table.add_row(e.id, e.index, e.mode, variants, e.status if e.running else f"[dim]{e.status}[/]",
                      e.created_at[:19], f"{t['impressions']:,}", f"{t['users']:,}", (t.get("last") or "-")[:19])
    console = Console()
    console.print(table)
    if warning:
        console.print(f"[yellow]{escape(warning)}[/]")


@ab.command("stop")
@click.argument("experiment_id")
@click.pass_context
@handle_errors
def stop(ctx: click.Context, experiment_id: str) -> None:
    """Stop EXPERIMENT_ID: the endpoint serves its usual ranking again; the report stays available."""
    store = _store(ctx)
    before = _get(store, experiment_id)
    after = store.stop(experiment_id)
    click.echo(f"experiment {experiment_id} " + ("stopped" if before.running else "was already stopped")
               + f" at {after.stopped_at}")


@ab.command("report")
@click.argument("experiment_id")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the HTML report. Default: <home>/reports/<experiment>.html.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON instead of tables.")
@click.option("--metric", type=click.Choice(["ctr", "clicks@1", "clicks@3", "clicks@10", "abandonment", "mrr"]),
              default="ctr", show_default=True, help="Primary A/B metric (the verdict's).")
@click.option("--interleave-unit", type=click.Choice(["impression", "user"]), default="impression",
              show_default=True, help="Interleaving: one outcome per search, or per user (majority).")
@click.option("--bucket", type=click.Choice(["minute", "hour", "day"]), default=None,
              help="Time series bucket (default: auto).")
@click.pass_context
@handle_errors
def report(ctx: click.Context, experiment_id: str, html_path: Path | None, as_json: bool, metric: str,
           interleave_unit: str, bucket: str | None) -> None:
    """Statistics of EXPERIMENT_ID from the events index: summary, verdict, and an HTML report."""
    from ltr.experiments.report import experiment_report

    experiment = _get(_store(ctx), experiment_id)
    stats, out = experiment_report(settings_from(ctx), experiment, primary=metric,
                                   interleave_unit=interleave_unit,  # type: ignore[arg-type]
                                   bucket=bucket,  # type: ignore[arg-type]
                                   html_path=html_path)
    if as_json:
        click.echo(json.dumps({**stats.to_json(), "html": str(out)}, indent=2))
        return
    _print_summary(stats, out)


def _print_summary(stats: ExperimentStats, out: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ltr.experiments.metrics import METRIC_LABELS, METRICS
    from ltr.experiments.results import Interval

    def ci(iv: Interval) -> str:
        if not math.isfinite(iv.value):
            return "-"
        if not (math.isfinite(iv.low) and math.isfinite(iv.high)):
            return f"{iv.value:.4f}"
        return escape(f"{iv.value:.4f} [{iv.low:.4f}, {iv.high:.4f}]")

    console = Console()
    exp = stats.experiment
    console.print(f"[bold]{exp.id}[/] on {exp.index} ({exp.mode}, {exp.status}): {stats.impressions:,} searches "
                  f"by {stats.units:,} users, {stats.first_seen:%Y-%m-%d %H:%M} – {stats.last_seen:%Y-%m-%d %H:%M}")
    table = Table(title="per user, mean [95% CI]" if stats.alpha == 0.05 else None)
    for col in ("variant", "ranker", "users", "searches", "clicks", *(METRIC_LABELS[m] for m in METRICS)):
        table.add_column(col)
    for v in stats.variants:
        table.add_row(v.name, v.ranker, f"{v.units:,}", f"{v.impressions:,}", f"{v.clicks:,}",
                      *(ci(v.metrics[m]) for m in METRICS))
    console.print(table)
    for note in stats.notes:
        console.print(f"[yellow]{escape(note)}[/]")
    console.print(f"[bold {'green' if stats.significant else 'white'}]{escape(stats.verdict)}[/]")
    for method in stats.methods:  # every credit rule (two variants) or pair (multileaving)
        console.print(f"  {escape(method.verdict)}")
    console.print(f"report: {out}")
