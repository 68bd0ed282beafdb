"""The ``hybridrank`` command line: a lazy group, one command per module.

Each subcommand lives in the module that owns its work and is imported only when invoked, so
``hybridrank --help`` never loads torch, sentence-transformers or lightgbm.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# command name -> "module:attribute" of a click command in this package; add a row (and a module) to add a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "es": ("es:es", "Start, stop or inspect the managed local Elasticsearch."),
    "index": ("index:index", "Create an index and load documents (JSONL, CSV, BEIR)."),
    "search": ("search:search", "Run one query and print the ranked candidates."),
    "evaluate": ("evaluate:evaluate", "NDCG@10, Recall@100, MRR@10 of every mode on a split."),
    "features": ("features:features", "Ranking features: `features log` writes a Parquet training log."),
    "train": ("train:train", "Train a learning-to-rank model (LightGBM lambdarank or ListNet)."),
    "clicks": ("clicks:clicks", "Click statistics: `clicks aggregate` writes position-debiased CTR."),
    "models": ("models:models", "Trained models: list, show, promote to serving, roll back."),
    "serve": ("serve:serve", "Serve an Elasticsearch-compatible endpoint that reranks searches."),
    "events": ("events:events", "The event spool: `events flush` ships spooled events now."),
    "simulate": ("simulate:simulate", "Synthetic users search the endpoint and click (position-based model)."),
    "datasets": ("datasets:datasets", "Write the project's own test collections (films: a dated corpus)."),
    "cross-encoder": ("cross_encoder:cross_encoder",
                      "Cross-encoders: fine-tune one on judgments, score pairs, measure pairs/s."),
    "ab": ("ab:ab", "Ranking experiments (A/B, interleaving): create, status, report, stop."),
    "demo": ("demo:demo", "The main job: start ES, index, evaluate, train, show the gain, close the loop."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(f"{__package__}.{module_name}"), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="HYBRIDRANK_CONFIG",
    help="Config file (TOML). Default: ./hybridrank.toml if present.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """hybridrank: hybrid BM25 + dense retrieval with learned reranking for Elasticsearch."""
    from hybridrank.runtime import tune_gc

    tune_gc()
    ctx.obj = {"config_path": config_path}


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="hybridrank")
