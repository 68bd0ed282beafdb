"""``hybridrank demo``: the main job end to end (``hybridrank.demo.run_demo``)."""

from __future__ import annotations

from pathlib import Path

import click

from hybridrank.cli.support import handle_errors, settings_from


@click.command()
@click.option("--collection", "collection_spec", default=None,
              help="A BEIR-layout folder, or beir:<name>. Default: scifact among the shared collections "
                   "(../shared/datasets beside the repository, or $HYBRIDRANK_SHARED_DIR/datasets).")
@click.option("--index", "index_name", default=None, help="Index name (default: the collection's name).")
@click.option("--split", default="test", show_default=True, help="Split to evaluate on.")
@click.option("--train-split", default="train", show_default=True,
              help="Split to train the learned ranker on (skipped if the collection has none).")
@click.option("--remove-query-doc/--keep-query-doc", default=None,
              help="Drop a query's own document from its results (ArguAna's convention). "
                   "Default: on when most query ids are also document ids.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where results go (default runs/<collection>).")
@click.option("--loop/--no-loop", "with_loop", default=True, show_default=True,
              help="Run the feedback loop (simulated users, clicks, click-trained ranker, interleaving report).")
@click.option("--loop-sessions", type=click.IntRange(50), default=1500, show_default=True,
              help="Simulated searches that train the click-based ranker.")
@click.option("--experiment-sessions", type=click.IntRange(50), default=1000, show_default=True,
              help="Simulated searches of the interleaving experiment.")
@click.pass_context
@handle_errors
def demo(ctx: click.Context, collection_spec: str | None, index_name: str | None, split: str, train_split: str,
         remove_query_doc: bool | None, out_dir: Path | None, with_loop: bool, loop_sessions: int,
         experiment_sessions: int) -> None:
    """Start Elasticsearch, index a collection, evaluate every mode, train and show the learned gain."""
    from hybridrank.demo import DemoOptions, run_demo

    run_demo(settings_from(ctx), DemoOptions(collection_spec, index_name, split, train_split, remove_query_doc,
                                             out_dir, with_loop, loop_sessions, experiment_sessions),
             echo=click.echo)
