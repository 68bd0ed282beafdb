"""``hybridrank cross-encoder``: fine-tune a cross-encoder on judgments, score pairs, measure pairs/s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from hybridrank.cli.support import handle_errors, settings_from


@click.group(name="cross-encoder")
def cross_encoder() -> None:
    """Cross-encoders: `train` one from the packaged MiniLM, `score` pairs, `bench` pairs/s."""


@cross_encoder.command()
@click.option("--collection", "collection_spec", required=True,
              help="A BEIR-layout folder or beir:<name> with the training judgments.")
@click.option("--index", "index_name", required=True, help="The index holding the collection (hard negatives).")
@click.option("--split", default="train", show_default=True, help="Which qrels/<split>.tsv to train on.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to save the model (and hybridrank-cross-encoder.json) to.")
@click.option("--base", default="minilm", show_default=True,
              help="Base checkpoint: the packaged alias 'minilm' or a local model directory.")
@click.option("--epochs", type=click.IntRange(1, 100), default=2, show_default=True)
@click.option("--hard-negatives", type=click.IntRange(0, 1000), default=3, show_default=True,
              help="Top-k unjudged-relevant documents of the hybrid window per query.")
@click.option("--max-pairs", type=click.IntRange(1), default=4000, show_default=True,
              help="Cap on training pairs (whole queries are kept). The defaults take SciFact's whole train "
                   "split (3,346 pairs) and train in ~13 min on 2 cores.")
@click.option("--max-length", type=click.IntRange(16, 512), default=128, show_default=True,
              help="Tokens of query + document the model reads (longer is slower).")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(0, 1, min_open=True), default=5e-5, show_default=True)
@click.option("--window", type=click.IntRange(1, 10_000), default=None,
              help="Hybrid window per leg (default: the index's candidate_window).")
@click.option("--max-minutes", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True,
              help="Stop training after this long (the step that crosses it is the last); the time is recorded.")
@click.option("--loss", type=click.Choice(["listwise", "bce"]), default="listwise", show_default=True,
              help="listwise: a softmax over each query's pairs (its positives against its hard negatives); "
                   "bce: each pair on its own.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.pass_context
@handle_errors
def train(ctx: click.Context, collection_spec: str, index_name: str, split: str, out_dir: Path, base: str,
          epochs: int, hard_negatives: int, max_pairs: int, max_length: int, batch_size: int,
          learning_rate: float, window: int | None, max_minutes: float, loss: str, seed: int) -> None:
    """Fine-tune a cross-encoder on a split's judgments with hard negatives from the hybrid window."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ltr.cross_encoder.fine_tune import fine_tune_cross_encoder
    from ltr.evaluation.datasets import load_collection

    settings = settings_from(ctx)
    collection = load_collection(collection_spec, home=settings.home)
    err = Console(stderr=True)
    start = time.perf_counter()
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True) as progress:
        retrieving = progress.add_task("retrieving hard negatives", total=None)
        training = progress.add_task("training", total=None, visible=False)

        def on_step(done: int, total: int) -> None:
            progress.update(retrieving, visible=False)
            progress.update(training, completed=done, total=total, visible=True)

        result = fine_tune_cross_encoder(
            settings, index_name, collection, out_dir=out_dir, split=split, base=base, epochs=epochs,
            hard_negatives=hard_negatives, max_pairs=max_pairs, max_length=max_length, batch_size=batch_size,
            learning_rate=learning_rate, window=window, seed=seed, max_seconds=60 * max_minutes, loss=loss,
            on_retrieve=lambda n: progress.advance(retrieving, n), on_step=on_step)
    planned = result.metadata["planned_steps"]
    if result.steps < planned:
        click.echo(f"stopped at the {max_minutes:g}-minute limit after {result.steps} of {planned} steps")
    click.echo(f"trained on {result.pairs} pairs ({result.positives} positive) from {result.queries} queries, "
               f"{result.steps} steps, final loss {result.final_loss:.4f}")
    click.echo(f"training time {result.train_seconds:.1f} s "
               f"({result.metadata['train_pairs_per_s']} pairs/s); total {time.perf_counter() - start:.1f} s")
    click.echo(f"saved to {result.out_dir}")


@cross_encoder.command()
@click.option("--model", "model_ref", required=True, help="A cross-encoder directory or a cached name.")
@click.option("--query", required=True)
@click.argument("texts", nargs=-1, required=True)
@handle_errors
def score(model_ref: str, query: str, texts: tuple[str, ...]) -> None:
    """Score each TEXT against --query (raw logits, higher = more relevant)."""
    from ltr.cross_encoder.scoring import CrossEncoderScorer

    scorer = CrossEncoderScorer.load(model_ref)
    for value, text in zip(scorer.score(query, list(texts)).tolist(), texts, strict=True):
        click.echo(f"{value:9.4f}  {text[:100]}")


@cross_encoder.command()
@click.option("--model", "model_ref", required=True, help="A cross-encoder directory or a cached name.")
@click.option("--collection", "collection_spec", required=True, help="A BEIR-layout folder or beir:<name>.")
@click.option("--index", "index_name", required=True)
@click.option("--split", default="test", show_default=True)
@click.option("--queries", "n_queries", type=click.IntRange(1), default=10, show_default=True)
@click.option("--top-n", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Candidates of each query's hybrid window to score.")
@click.option("--batch-size", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
@handle_errors
def bench(ctx: click.Context, model_ref: str, collection_spec: str, index_name: str, split: str, n_queries: int,
          top_n: int, batch_size: int, json_path: Path | None) -> None:
    """Pairs/s of the cross-encoder on real (query, top-N window document) pairs."""
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from ltr.cross_encoder.fine_tune import HYBRID_MODE
    from ltr.cross_encoder.pairs import fetch_texts
    from ltr.cross_encoder.scoring import CrossEncoderScorer
    from ltr.evaluation.datasets import load_collection

    settings = settings_from(ctx)
    collection = load_collection(collection_spec, home=settings.home)
    queries = collection.split_queries(split, limit=n_queries)
    config = settings.index(index_name)
    client = make_client(settings)
    retriever = Retriever(client, index_name, config, embedder_from_settings(settings))
    windows = retriever.search_many(list(queries.values()), mode=HYBRID_MODE)
    texts = fetch_texts(client, index_name, [c.doc_id for w in windows for c in w[:top_n]], config.embed_fields)
    pairs = [(q, texts[c.doc_id]) for q, w in zip(queries.values(), windows, strict=True)
             for c in w[:top_n] if c.doc_id in texts]
    scorer = CrossEncoderScorer.load(model_ref, batch_size=batch_size)
    scorer.score_pairs(pairs[:batch_size])  # warm-up
    scorer.pairs_scored, scorer.seconds = 0, 0.0
    for query, window in zip(queries.values(), windows, strict=True):
        scorer.score(query, [texts[c.doc_id] for c in window[:top_n] if c.doc_id in texts])
    result = {"model": model_ref, "queries": len(queries), "top_n": top_n, "pairs": scorer.pairs_scored,
              "seconds": round(scorer.seconds, 3), "pairs_per_s": round(scorer.pairs_per_s, 2),
              "ms_per_query": round(1000 * scorer.seconds / len(queries), 1), "batch_size": batch_size,
              "max_length": scorer.max_length}
    click.echo(json.dumps(result, indent=2))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
