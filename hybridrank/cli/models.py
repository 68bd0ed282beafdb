"""``hybridrank models list|show|promote|rollback``: the model store and which model serves what."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hybridrank.cli.support import handle_errors, settings_from

if TYPE_CHECKING:
    from ltr.evaluation.held_out import HeldOutSource
    from ltr.training.gate import GateResult

F = TypeVar("F", bound=Callable[..., Any])

GATE_HELP = ("The promotion gate: the model serves only if it beats the best baseline order (BM25, ES query+knn, "
             "RRF, linear fusion; [gate] in the config) on held-out judged queries of the index, with a one-sided "
             "paired test; refused otherwise, unless --force.")


def gate_options(func: F) -> F:
    """The options that say what the promotion gate judges a model on (``train --register``, ``models promote``)."""
    options = [
        click.option("--held-out-collection", default=None,
                     help="Judge the model on this collection's queries (a BEIR folder or beir:<name>) in the index."),
        click.option("--held-out-split", default="test", show_default=True,
                     help="The split of --held-out-collection whose qrels judge the model."),
        click.option("--held-out-qrels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="A judgments file (BEIR or TREC qrels) of --held-out-collection's queries, instead of "
                     "its split."),
        click.option("--held-out-clicks", is_flag=True,
                     help="Judge the model on labels from the index's clicks (the events index), as "
                     "`train --from-events` grades them."),
        click.option("--held-out-limit", type=click.IntRange(1), default=None,
                     help="Only the first N held-out judged queries."),
        click.option("--remove-query-doc", is_flag=True,
                     help="Drop a document whose id equals the query id (the BEIR ArguAna convention)."),
        click.option("--force", is_flag=True,
                     help="Promote even if the gate refuses (said loudly, and recorded with the model)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def held_out_from(params: dict[str, Any], *, default_collection: str | None = None) -> HeldOutSource | None:
    """The held-out judgments the gate options name (``default_collection`` when none is named)."""
    from ltr.evaluation.held_out import ClickHeldOut, QrelsHeldOut

    collection = params["held_out_collection"] or default_collection
    if params["held_out_clicks"]:
        if params["held_out_collection"] or params["held_out_qrels"]:
            raise click.UsageError("--held-out-clicks judges on clicks: drop --held-out-collection/--held-out-qrels")
        return ClickHeldOut()
    if params["held_out_qrels"] is not None and collection is None:
        raise click.UsageError("--held-out-qrels needs --held-out-collection (the queries file of its query ids)")
    if collection is None:
        return None
    return QrelsHeldOut(collection, params["held_out_split"], params["held_out_qrels"], params["held_out_limit"],
                        params["remove_query_doc"])


def gate_lines(gate: GateResult) -> list[str]:
    """What a promotion prints about the gate (rich markup): the decision, and a loud warning when forced."""
    from rich.markup import escape

    if gate.forced:
        return [f"[bold red]WARNING: promoted by --force against the promotion gate[/]: {escape(gate.summary())}"]
    return [escape(gate.summary())]


@click.group()
def models() -> None:
    """Trained ranking models: list, inspect, promote to serving, roll back."""


@models.command("list")
@click.option("--index", "index_name", default=None, help="Only this index's models.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@handle_errors
def list_models(ctx: click.Context, index_name: str | None, as_json: bool) -> None:
    """Every stored model, newest last, with its validation NDCG@10 and the variants it serves."""
    from rich.console import Console
    from rich.table import Table

    from ltr.training.registry import ModelRegistry

    entries = ModelRegistry.from_settings(settings_from(ctx)).list_models(index_name)
    rows: list[dict[str, Any]] = [{
             "index": e.index, "model_id": e.model_id, "type": e.contract.model_type if e.contract else "?",
             "created_at": e.contract.created_at if e.contract else "",
             "valid_ndcg@10": e.contract.metrics.get("valid_window_ndcg@10") if e.contract else None,
             "serving": list(e.serving_variants), "problem": e.problem, "path": str(e.path),
             "gate": _gate_cell(e.path)} for e in entries]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no models stored yet; train one with `hybridrank train`")
        return
    table = Table()
    for col in ("index", "model id", "type", "created", "valid NDCG@10", "gate", "serving"):
        table.add_column(col)
    for r in sorted(rows, key=lambda r: (r["index"], r["created_at"])):
        ndcg = f"{r['valid_ndcg@10']:.4f}" if isinstance(r["valid_ndcg@10"], float) else "-"
        table.add_row(r["index"], r["model_id"], r["type"], r["created_at"], ndcg, r["gate"] or "-",
                      ", ".join(r["serving"]) or (f"[red]{r['problem']}[/]" if r["problem"] else ""))
    Console().print(table)


def _gate_cell(model_dir: Path) -> str | None:
    """The latest gate decision in a word or two (None: never gated; unreadable: said so)."""
    from hybridrank.errors import ModelError
    from ltr.training.gate import latest_decision

    try:
        gate = latest_decision(model_dir)
    except ModelError:
        return "unreadable gate.json"
    if gate is None:
        return None
    return gate.outcome + (" (forced)" if gate.forced else "")


@models.command("show")
@click.argument("model_ref")
@click.option("--index", "index_name", default=None, help="Index (needed for 'serving').")
@click.option("--variant", default="default", show_default=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, model_ref: str, index_name: str | None, variant: str) -> None:
    """Print a model's contract (MODEL_REF: a model id, a model directory, or 'serving')."""
    from ltr.training.contract import ModelContract, contract_problems
    from ltr.training.gate import GateResult, read_decisions
    from ltr.training.registry import ModelRegistry

    settings = settings_from(ctx)
    path = ModelRegistry.from_settings(settings).resolve(model_ref, index=index_name, variant=variant)
    contract = ModelContract.read(path)
    click.echo(f"# {path}")
    click.echo(contract.to_json())
    index = index_name or contract.training.get("index")
    if index:
        from features.pipeline import FeaturePipeline

        problems = contract_problems(contract, FeaturePipeline.from_config(settings.index(index)))
        click.echo(f"# live feature config of index {index!r}: "
                   + ("matches" if not problems else "DIFFERS: " + "; ".join(problems)))
    decisions = read_decisions(path)
    click.echo("# promotion gate: " + (f"{len(decisions)} decision(s), latest last" if decisions else
                                       "never gated (promoted before the gate, or never promoted)"))
    for raw in decisions:
        click.echo(f"#   {raw.get('decided_at', '?')}: {GateResult.from_dict(raw).summary()}")


@models.command("promote", epilog=GATE_HELP)
@click.argument("model_id")
@click.option("--index", "index_name", required=True)
@click.option("--variant", default="default", show_default=True, help="Variant (for experiments).")
@gate_options
@click.pass_context
@handle_errors
def promote(ctx: click.Context, model_id: str, index_name: str, variant: str, **gate: Any) -> None:
    """Make MODEL_ID serve the index: refused if its contract disagrees with the live features, or if the
    promotion gate finds it no better than the best fusion on held-out queries (unless --force)."""
    from rich.console import Console

    from ltr.training.promotion import promote_model

    settings = settings_from(ctx)
    console = Console()
    err = Console(stderr=True)
    promotion = promote_model(settings, index_name, model_id, variant, held_out=held_out_from(gate),
                              force=gate["force"], say=err.print)
    for line in gate_lines(promotion.gate):
        console.print(line)
    change = promotion.change
    console.print(f"{index_name}/{variant}: now serving {change.current}" + (f" (was {change.previous})"
                                                                            if change.previous else ""))
    if promotion.compiled:
        console.print(promotion.compiled)


@models.command("rollback")
@click.option("--index", "index_name", required=True)
@click.option("--variant", default="default", show_default=True)
@click.pass_context
@handle_errors
def rollback(ctx: click.Context, index_name: str, variant: str) -> None:
    """Serve the previously serving model again."""
    from ltr.training.registry import ModelRegistry

    change = ModelRegistry.from_settings(settings_from(ctx)).rollback(index_name, variant)
    click.echo(f"{index_name}/{variant}: rolled back from {change.previous} to {change.current}")
