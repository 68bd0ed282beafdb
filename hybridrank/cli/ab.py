"""``hybridrank ab create|status|report|stop``: ranking experiments and their statistical report."""

from __future__ import annotations

import json
import math
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hybridrank.cli.support import handle_errors, settings_from
from hybridrank.errors import ConfigError, IndexNotFound

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from hybridrank.config import Settings
    from ltr.experiments.store import Experiment, ExperimentStore, Variant

_RANKER = re.compile(r"^(es|hybrid|rrf|model:[A-Za-z0-9_.-]+|variant:[A-Za-z0-9_.-]+)$")


def parse_variant(spec: str) -> tuple[str, str, float | None]:
    """``name=ranker[:share]`` → (name, ranker, share or None). The ranker may itself contain ':'."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise click.BadParameter(f"{spec!r}: expected name=ranker[:share], e.g. B=model:m1:0.5", param_hint="--variant")
    ranker, share = rest, None
    head, colon, tail = rest.rpartition(":")
    if colon and _RANKER.match(head):
        try:
            share = float(tail)
        except ValueError:
            ranker, share = rest, None
        else:
            ranker = head
    if not _RANKER.match(ranker):
        raise click.BadParameter(f"{spec!r}: ranker {ranker!r} is not one of es, hybrid, rrf, model:<id>, "
                                 "variant:<name>", param_hint="--variant")
    if share is not None and not (0 < share <= 1 and math.isfinite(share)):
        raise click.BadParameter(f"{spec!r}: share must be in (0, 1]", param_hint="--variant")
    return name, ranker, share


def build_variants(specs: tuple[str, ...]) -> tuple[Variant, ...]:
    """Variants from ``--variant`` options; unset shares split what the set ones leave, equally."""
    from ltr.experiments.store import Variant

    parsed = [parse_variant(s) for s in specs]
    given = sum(s for _, _, s in parsed if s is not None)
    missing = [p for p in parsed if p[2] is None]
    if missing and given >= 1:
        raise click.BadParameter(f"the given shares already sum to {given:g}; nothing is left for "
                                 f"{', '.join(p[0] for p in missing)}", param_hint="--variant")
    rest = (1.0 - given) / len(missing) if missing else 0.0
    return tuple(Variant(n, r, s if s is not None else rest) for n, r, s in parsed)


def _store(ctx: click.Context) -> ExperimentStore:
    from ltr.experiments.store import ExperimentStore

    return ExperimentStore(settings_from(ctx).experiments_file)


def _get(store: ExperimentStore, experiment_id: str) -> Experiment:
    try:
        return store.get(experiment_id)
    except ConfigError as exc:  # an unknown id is not a config problem: plain message, exit 1
        raise click.ClickException(str(exc)) from exc


@click.group()
def ab() -> None:
    """Ranking experiments: bucketed A/B or team-draft interleaving, with a statistical report."""


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
    from ltr.experiments.store import Experiment

    variants = build_variants(variant_specs)
    settings = settings_from(ctx)
    compiled = [note for v in variants if (note := _ready_to_serve(settings, index_name, v.ranker))]
    try:
        experiment = Experiment(id=experiment_id, index=index_name, mode=mode,  # type: ignore[arg-type]
                                variants=variants, salt=salt or secrets.token_hex(8), description=description)
        _store(ctx).create(experiment)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    shares = ", ".join(f"{v.name}={v.ranker}" + (f" ({100 * v.share:g}%)" if mode == "ab" else "")
                       for v in experiment.variants)
    click.echo(f"experiment {experiment.id} running on index {index_name}: {mode}, {shares}")
    for note in compiled:
        click.echo(note)


def _ready_to_serve(settings: Settings, index_name: str, ranker: str) -> str | None:
    """Refuse a variant whose model does not exist or disagrees with the live feature config (else the
    endpoint would serve that arm in hybrid order, with only a fallback header to say so), and compile
    the model for the endpoint (``ltr.training.model.compile_for_serving``). es/hybrid/rrf need nothing."""
    kind, _, name = ranker.partition(":")
    if kind not in ("model", "variant"):
        return None
    from features.pipeline import FeaturePipeline
    from ltr.training.model import compile_for_serving
    from ltr.training.registry import ModelRegistry

    registry = ModelRegistry(settings.home)
    model_id = registry.serving(index_name, name) if kind == "variant" else name
    if model_id is None:
        raise click.UsageError(f"{ranker}: no model serves index {index_name!r} variant {name!r} "
                               f"(`hybridrank models promote MODEL_ID --index {index_name} --variant {name}`)")
    model_dir = registry.model_dir(index_name, model_id)
    if not model_dir.is_dir():
        raise click.UsageError(f"{ranker}: index {index_name!r} has no model {model_id!r} "
                               f"(`hybridrank models list --index {index_name}`)")
    return compile_for_serving(model_dir, FeaturePipeline.from_config(settings.index(index_name)),
                               settings.compiled_dir)


def traffic_query(experiment_ids: list[str]) -> dict[str, Any]:
    """Search body: impressions and distinct users per experiment and variant (size 0, aggregations)."""
    return {
        "size": 0,
        "query": {"bool": {"filter": [{"term": {"type": "impression"}},
                                      {"terms": {"experiment": experiment_ids}}]}},
        "aggs": {"experiments": {
            "terms": {"field": "experiment", "size": max(len(experiment_ids), 1)},
            "aggs": {"users": {"cardinality": {"field": "user_id"}},
                     "last": {"max": {"field": "@timestamp"}},
                     "variants": {"terms": {"field": "variant", "size": 50, "missing": "(interleaved)"},
                                  "aggs": {"users": {"cardinality": {"field": "user_id"}}}}}}},
    }


def read_traffic(client: Elasticsearch, events_index: str, experiment_ids: list[str]) -> dict[str, dict[str, Any]]:
    """{experiment id: {"impressions", "users", "last", "variants": {name: impressions}}}; empty if no index."""
    from connector.client import translate_errors

    try:
        with translate_errors(index=events_index):
            resp = client.search(index=events_index, **traffic_query(experiment_ids))
    except IndexNotFound:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for bucket in resp["aggregations"]["experiments"]["buckets"]:
        out[bucket["key"]] = {
            "impressions": bucket["doc_count"], "users": bucket["users"]["value"],
            "last": bucket["last"].get("value_as_string"),
            "variants": {v["key"]: v["doc_count"] for v in bucket["variants"]["buckets"]}}
    return out


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

    from connector.client import make_client
    from hybridrank.errors import ClusterError

    settings = settings_from(ctx)
    store = _store(ctx)
    experiments = [_get(store, experiment_id)] if experiment_id else store.all()
    if not experiments:
        click.echo("no experiments yet; create one with `hybridrank ab create`")
        return
    warning = None
    try:
        client = make_client(settings)
        try:
            traffic = read_traffic(client, settings.feedback.events_index, [e.id for e in experiments])
        finally:
            client.close()
    except ClusterError as exc:
        traffic, warning = {}, f"traffic unknown: {exc}"
    rows = [{**e.to_json(), "traffic": traffic.get(e.id, {"impressions": 0, "users": 0, "variants": {}})}
            for e in experiments]
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
    from connector.client import make_client
    from hybridrank.errors import DataError
    from ltr.clicks.impressions import read_impressions
    from ltr.experiments.report import render_report
    from ltr.experiments.stats import compute_stats

    settings = settings_from(ctx)
    experiment = _get(_store(ctx), experiment_id)
    events_index = settings.feedback.events_index
    client = make_client(settings)
    try:
        impressions, _orphans = read_impressions(client, events_index, experiment=experiment_id)
    except IndexNotFound as exc:
        raise click.ClickException(f"experiment {experiment_id!r} has no traffic yet: the events index "
                                   f"{events_index!r} does not exist") from exc
    finally:
        client.close()
    try:
        stats = compute_stats(impressions, experiment, primary=metric,
                              interleave_unit=interleave_unit,  # type: ignore[arg-type]
                              bucket=bucket)  # type: ignore[arg-type]
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    out = render_report(stats, html_path or Path(settings.home).expanduser() / "reports" / f"{experiment_id}.html")
    if as_json:
        click.echo(json.dumps({**stats.to_json(), "html": str(out)}, indent=2))
        return
    _print_summary(stats, out)


def _print_summary(stats: Any, out: Path) -> None:
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
    significant = (stats.interleaving.significant if stats.interleaving is not None
                   else any(c.significant for c in stats.comparisons if c.metric == stats.primary))
    console.print(f"[bold {'green' if significant else 'white'}]{escape(stats.verdict)}[/]")
    console.print(f"report: {out}")
