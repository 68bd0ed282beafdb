"""``hybridrank models list|show|promote|rollback``: the model store and which model serves what."""

from __future__ import annotations

import json
from typing import Any

import click

from hybridrank.cli.support import handle_errors, settings_from


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

    entries = ModelRegistry(settings_from(ctx).home).list_models(index_name)
    rows: list[dict[str, Any]] = [{
             "index": e.index, "model_id": e.model_id, "type": e.contract.model_type if e.contract else "?",
             "created_at": e.contract.created_at if e.contract else "",
             "valid_ndcg@10": e.contract.metrics.get("valid_window_ndcg@10") if e.contract else None,
             "serving": list(e.serving_variants), "problem": e.problem, "path": str(e.path)} for e in entries]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no models stored yet; train one with `hybridrank train`")
        return
    table = Table()
    for col in ("index", "model id", "type", "created", "valid NDCG@10", "serving"):
        table.add_column(col)
    for r in sorted(rows, key=lambda r: (r["index"], r["created_at"])):
        ndcg = f"{r['valid_ndcg@10']:.4f}" if isinstance(r["valid_ndcg@10"], float) else "-"
        table.add_row(r["index"], r["model_id"], r["type"], r["created_at"], ndcg,
                      ", ".join(r["serving"]) or (f"[red]{r['problem']}[/]" if r["problem"] else ""))
    Console().print(table)


@models.command("show")
@click.argument("model_ref")
@click.option("--index", "index_name", default=None, help="Index (needed for 'serving').")
@click.option("--variant", default="default", show_default=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, model_ref: str, index_name: str | None, variant: str) -> None:
    """Print a model's contract (MODEL_REF: a model id, a model directory, or 'serving')."""
    from ltr.training.contract import ModelContract, contract_problems
    from ltr.training.registry import ModelRegistry

    settings = settings_from(ctx)
    path = ModelRegistry(settings.home).resolve(model_ref, index=index_name, variant=variant)
    contract = ModelContract.read(path)
    click.echo(f"# {path}")
    click.echo(contract.to_json())
    index = index_name or contract.training.get("index")
    if index:
        from features.pipeline import FeaturePipeline

        problems = contract_problems(contract, FeaturePipeline.from_config(settings.index(index)))
        click.echo(f"# live feature config of index {index!r}: "
                   + ("matches" if not problems else "DIFFERS: " + "; ".join(problems)))


@models.command("promote")
@click.argument("model_id")
@click.option("--index", "index_name", required=True)
@click.option("--variant", default="default", show_default=True, help="Variant (for experiments).")
@click.pass_context
@handle_errors
def promote(ctx: click.Context, model_id: str, index_name: str, variant: str) -> None:
    """Make MODEL_ID serve the index (refused if its contract disagrees with the live features)."""
    from ltr.training.promotion import promote_model

    settings = settings_from(ctx)
    if settings.compiled_dir is not None:
        click.echo(f"checking {model_id} and compiling it for the endpoint ...", err=True)
    promotion = promote_model(settings, index_name, model_id, variant)
    change = promotion.change
    click.echo(f"{index_name}/{variant}: now serving {change.current}" + (f" (was {change.previous})"
                                                                            if change.previous else ""))
    if promotion.compiled:
        click.echo(promotion.compiled)


@models.command("rollback")
@click.option("--index", "index_name", required=True)
@click.option("--variant", default="default", show_default=True)
@click.pass_context
@handle_errors
def rollback(ctx: click.Context, index_name: str, variant: str) -> None:
    """Serve the previously serving model again."""
    from ltr.training.registry import ModelRegistry

    change = ModelRegistry(settings_from(ctx).home).rollback(index_name, variant)
    click.echo(f"{index_name}/{variant}: rolled back from {change.previous} to {change.current}")
