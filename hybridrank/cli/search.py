"""``hybridrank search``: one query, one readable table of the ranked candidate window."""

from __future__ import annotations

import json
from typing import Any

import click

from hybridrank.cli.support import handle_errors, settings_from

MODE_CHOICES = ("bm25", "knn", "es", "rrf", "linear")  # mirrors connector.retrieval.retriever.MODES (kept light)


def _parse_filters(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[dict]:
    filters: list[dict] = []
    for raw in values:
        try:
            clause = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {raw!r} ({exc.msg})") from exc
        if not isinstance(clause, dict) or len(clause) != 1:
            raise click.BadParameter(f"a filter is one query clause object, e.g. {{\"term\": {{...}}}}: {raw!r}")
        filters.append(clause)
    return filters


@click.command()
@click.argument("query_text")
@click.option("--index", "index_name", required=True, help="Index to search.")
@click.option("--mode", type=click.Choice(MODE_CHOICES), default="linear", show_default=True,
              help="Retrieval mode: one leg, Elasticsearch's own hybrid, or a client-side fusion.")
@click.option("--window", type=click.IntRange(1, 10_000), default=None,
              help="Candidate window per leg (default: the index's candidate_window).")
@click.option("--size", type=click.IntRange(1, 1000), default=10, show_default=True, help="Rows to print.")
@click.option("--filter", "filters", multiple=True, callback=_parse_filters,
              help='A filter clause as JSON, applied to both legs; repeatable. E.g. \'{"term": {"lang": "en"}}\'.')
@click.option("--model", "model_ref", default=None,
              help="Rerank the window with a learned model: a model directory, a model id, or 'serving'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@handle_errors
def search(ctx: click.Context, query_text: str, index_name: str, mode: str, window: int | None, size: int,
           filters: list[dict], model_ref: str | None, as_json: bool) -> None:
    """Run QUERY_TEXT against an index and print the ranked candidates with each leg's score and rank."""
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever

    settings = settings_from(ctx)
    config = settings.index(index_name)
    retriever = Retriever(make_client(settings), index_name, config, embedder_from_settings(settings))
    source = list(dict.fromkeys([*config.text_fields, *config.keyword_fields]))
    rows: list[dict[str, Any]]
    if model_ref:
        from ltr.ranking import rerank_with_model

        result = rerank_with_model(settings, retriever, model_ref, query_text, filters=filters, window=window)
        header = f"model {result.model_id}"
        rows = [_row(c, float(s)) for c, s in zip(result.candidates, result.scores, strict=True)]
    else:
        candidates = retriever.search(query_text, mode=mode, window=window, filters=filters, source=source)
        header = f"mode {mode}"
        rows = [_row(c, c.fused_score) for c in candidates]
    rows = rows[:size]
    if as_json:
        click.echo(json.dumps({"query": query_text, "index": index_name, "ranker": header, "hits": rows}, indent=2))
        return
    _print_table(query_text, index_name, header, rows)


def _row(cand: Any, score: float) -> dict[str, Any]:
    return {
        "doc_id": cand.doc_id,
        "score": score,
        "bm25": cand.leg_scores.get("bm25"),
        "bm25_rank": cand.leg_ranks.get("bm25"),
        "knn": cand.leg_scores.get("knn"),
        "knn_rank": cand.leg_ranks.get("knn"),
        "title": str(cand.source.get("title") or cand.source.get("text") or "")[:80],
    }


def _print_table(query_text: str, index_name: str, header: str, rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{query_text!r} on {index_name} ({header})")
    for name, justify in (("#", "right"), ("doc", "left"), ("score", "right"), ("bm25 (rank)", "right"),
                          ("knn (rank)", "right"), ("title", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, row in enumerate(rows, start=1):
        table.add_row(str(i), row["doc_id"], f"{row['score']:.4f}", _leg(row["bm25"], row["bm25_rank"]),
                      _leg(row["knn"], row["knn_rank"]), row["title"])
    Console().print(table)


def _leg(score: float | None, rank: int | None) -> str:
    return "—" if score is None else f"{score:.3f} ({rank})"
