"""The main job end to end, on any BEIR-layout collection (``hybridrank demo`` calls ``run_demo``).

1. start the managed local Elasticsearch (or use ``ES_URL``),
2. create the index and load the corpus (embedding cached on disk, so a re-run is quick),
3. retrieve the test split once and evaluate every retrieval mode,
4. log features and train LightGBM (and ListNet) on the train split, put the LightGBM model through the
   promotion gate (``ltr.training.gate``: it must beat the best of BM25, ES query+knn, RRF and linear
   fusion on the held-out test queries) to serve the index, and add both to the table; a collection
   without a train split gets 5-fold CV (nothing is promoted),
5. print the table and write every number to ``runs/<collection>/evaluation.json``,
6. close the feedback loop through the real endpoint (``ltr.clicks.feedback_loop``): simulated users search
   and click (an A/B/C of es / hybrid / rrf order on the train queries) -> ``clicks aggregate`` ->
   a ranker trained from the clicks alone, scored on the test qrels and put through the same gate for the
   variant ``clicks`` (on SciFact it is usually refused: the demo says so and goes on) -> an interleaving
   experiment of BM25 order vs the model serving the index (linear fusion if the gate let none serve) ->
   its report (``runs/<collection>/ab-report.html``), headed by the click-gap credit rule's verdict
   (``ltr.experiments.credit.HEADLINE_RULE``, the most sensitive rule measured; every rule's verdict
   follows it). The simulated users are ``feedback.click_model`` (default: navigational cascade users,
   ``ltr.clicks.user_models``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from connector.retrieval.retriever import Retriever
    from hybridrank.config import Settings
    from ltr.evaluation.datasets import Collection
    from ltr.evaluation.metrics import RunDict


CLICKS_VARIANT = "clicks"  # the variant the click-trained ranker is gated for


@dataclass(frozen=True)
class DemoOptions:
    """What ``hybridrank demo`` lets a user choose (its options' defaults are these)."""

    collection: str | None = None  # a BEIR folder or beir:<name>; default: scifact among the shared collections
    index: str | None = None  # default: the collection's name
    split: str = "test"
    train_split: str = "train"
    remove_query_doc: bool | None = None  # default: on when most query ids are also document ids
    out_dir: Path | None = None  # default: runs/<collection>
    with_loop: bool = True
    loop_sessions: int = 1500
    experiment_sessions: int = 1000


def run_demo(settings: Settings, options: DemoOptions, *, echo: Callable[[str], None] = print) -> None:
    """Start Elasticsearch, index a collection, evaluate every mode, train and show the learned gain,
    then close the feedback loop. Progress goes to stderr; result lines to ``echo``."""
    from rich.console import Console

    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.indexing.documents import count_records, read_beir
    from connector.indexing.index_setup import create_index
    from connector.indexing.indexer import index_documents, merge_segments
    from connector.retrieval.retriever import MODES, Retriever
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.metrics import evaluate_runs, retrieve_windows, run_from_windows

    console = Console(stderr=True)
    collection_spec, index_name, split, train_split = (options.collection, options.index, options.split,
                                                       options.train_split)
    remove_query_doc = options.remove_query_doc
    if collection_spec is None:
        from ltr.evaluation.datasets import shared_datasets_dir

        collection_spec = str(shared_datasets_dir() / "scifact")
    collection = load_collection(collection_spec, home=settings.home)
    index_name = index_name or collection.name
    config = settings.index(index_name)
    out = Path(options.out_dir or Path("runs") / collection.name)

    console.rule("[bold]1. Elasticsearch")
    url = _ensure_cluster(settings, console)
    client = make_client(settings, url=url)

    console.rule(f"[bold]2. Index {collection.name} → {index_name}")
    embedder = embedder_from_settings(settings)
    setup = create_index(client, index_name, config, dims=embedder.dimension)
    console.print(f"index {index_name}: {'created' if setup.created else 'exists'}; analyzer {setup.analyzer}"
                  + (f" ({setup.reason})" if setup.reason else ""))
    docs_path = collection.path
    report = index_documents(client, index_name, config, embedder, read_beir(docs_path),
                             total=count_records(docs_path, "beir"))
    console.print(report.summary())
    before, after = merge_segments(client, index_name)  # as `hybridrank index` leaves a load: cheaper searches
    if after < before:
        console.print(f"merged {before} segments into {after}")

    console.rule(f"[bold]3. Evaluate every retrieval mode on {split}")
    queries = collection.split_queries(split)
    qrels = collection.qrels(split)
    if remove_query_doc is None:
        doc_ids = _corpus_ids(collection)
        remove_query_doc = sum(q in doc_ids for q in queries) > len(queries) / 2
        if remove_query_doc:
            console.print("most query ids are document ids: removing each query's own document (BEIR ArguAna "
                          "convention); pass --keep-query-doc to keep it")
    retriever = Retriever(client, index_name, config, embedder)
    windows = retrieve_windows(retriever, queries, list(MODES))
    runs = {mode: run_from_windows(w, remove_query_doc=remove_query_doc) for mode, w in windows.items()}

    console.rule("[bold]4. Learned rankers")
    settings = settings.model_copy(update={"cluster": settings.cluster.model_copy(update={"url": url})})
    runs.update(_learned_runs(settings, collection, index_name, retriever, split, train_split,
                              remove_query_doc, out, console, echo=echo))

    result = evaluate_runs(qrels, runs, baseline="bm25")
    result.meta.update({"collection": collection.name, "split": split, "index": index_name,
                        "remove_query_doc": remove_query_doc, "queries": len(queries)})
    Console().print(result.table(title=f"{collection.name} / {split}: {len(queries)} queries"))
    learned_names = [name for name in runs if name not in MODES]
    for reference in ("rrf", "linear"):
        versus = evaluate_runs(qrels, {reference: runs[reference], **{n: runs[n] for n in learned_names}},
                               baseline=reference, metrics=("ndcg@10",))
        for name in learned_names:
            delta = versus.means[name]["ndcg@10"] - versus.means[reference]["ndcg@10"]
            wtl = versus.win_tie_loss[name]["ndcg@10"]
            echo(f"{name} vs {reference}: NDCG@10 {delta:+.4f}, p = {versus.p_values[name]['ndcg@10']:.4f} "
                       f"(paired t-test), W/T/L {wtl['W']}/{wtl['T']}/{wtl['L']}")
        result.meta[f"vs_{reference}"] = versus.to_dict()["p_values"]
    echo(_gain_line(result.means))
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(result.to_json(), encoding="utf-8")
    echo(f"all numbers: {out / 'evaluation.json'}")
    if not options.with_loop:
        return
    if train_split not in collection.splits():
        console.print(f"no '{train_split}' split: the feedback loop needs one (its clicks train, {split} judges)")
        return
    console.rule("[bold]5. The feedback loop: simulated users → clicks → click-trained ranker → experiment")
    _feedback_loop(settings, collection, index_name, embedder, split, train_split, runs, out, console,
                   loop_sessions=options.loop_sessions, experiment_sessions=options.experiment_sessions,
                   remove_query_doc=remove_query_doc, echo=echo)


def _ensure_cluster(settings: Settings, console: Console) -> str:
    from connector.client import cluster_url

    if settings.cluster.url:
        console.print(f"using the cluster at {settings.cluster.url} (ES_URL / config); starting nothing")
        return cluster_url(settings)
    from connector.node.launcher import LocalElasticsearch

    node = LocalElasticsearch.from_settings(settings)
    status = node.start()
    console.print(f"local Elasticsearch {status.version} at {node.url} (stop it with `hybridrank es stop`)")
    return node.url


def _corpus_ids(collection: Collection) -> set[str]:
    return {str(doc["_id"]) for doc in collection.iter_corpus()}


def _gated_promotion(settings: Settings, collection: Collection, index_name: str, model_id: str, variant: str,
                     split: str, remove_query_doc: bool, console: Console, echo: Callable[[str], None]) -> bool:
    """Put ``model_id`` through the promotion gate on the ``split`` qrels for (index, variant); a refusal is
    reported with its numbers (and stored with the model) and the demo goes on. True if it now serves."""
    from rich.markup import escape

    from hybridrank.errors import PromotionRefused
    from ltr.evaluation.held_out import QrelsHeldOut
    from ltr.training.promotion import promote_model

    held_out = QrelsHeldOut(str(collection.path), split, remove_query_doc=remove_query_doc)
    try:
        with console.status(f"promotion gate for {model_id}: scoring it and the baselines on the {split} queries"):
            promotion = promote_model(settings, index_name, model_id, variant, held_out=held_out)
    except PromotionRefused as refused:
        echo(str(refused))
        return False
    echo(promotion.gate.summary())
    console.print(f"promoted {escape(model_id)} to serve index {index_name} variant {variant}"
                  + (f"; {escape(promotion.compiled)}" if promotion.compiled else ""))
    return True


def _learned_runs(settings: Settings, collection: Collection, index_name: str, retriever: Retriever, split: str,
                  train_split: str, remove_query_doc: bool, out: Path, console: Console, *,
                  echo: Callable[[str], None]) -> dict[str, RunDict]:
    """LightGBM and ListNet on ``train_split`` scored on ``split`` (LightGBM through the promotion gate);
    5-fold CV when there is no train split."""
    from datetime import UTC, datetime

    from ltr.evaluation.learned import cross_validated_run, log_split, model_scores, run_from_scores
    from ltr.training.registry import DEFAULT_VARIANT, ModelRegistry
    from ltr.training.train import TrainConfig, train_model

    moment = datetime.now(UTC)
    logs = out / "feature-logs"
    console.print(f"logging features of the {split} queries (exact scores of both legs for every candidate)")
    test_log = log_split(retriever, collection, split, logs / f"{split}.parquet", request_time=moment)
    if train_split not in collection.splits():
        console.print(f"{collection.name} has no '{train_split}' split: LightGBM by 5-fold cross-validation "
                      f"over the {split} queries")
        return {"lightgbm (5-fold CV)": cross_validated_run(test_log, folds=5, remove_query_doc=remove_query_doc)}
    console.print(f"logging features of the {train_split} queries")
    train_log = log_split(retriever, collection, train_split, logs / f"{train_split}.parquet", request_time=moment)
    registry = ModelRegistry.from_settings(settings)
    runs: dict[str, RunDict] = {}
    for model_type in ("lightgbm", "listnet"):
        result = train_model(train_log, None, config=TrainConfig(model_type=model_type),
                             model_store=lambda model_id: registry.model_dir(index_name, model_id))
        console.print(f"trained {model_type} {result.contract.model_id} on {result.train_queries} queries "
                      f"-> {result.model_dir}")
        if model_type == "lightgbm":
            _gated_promotion(settings, collection, index_name, result.contract.model_id, DEFAULT_VARIANT, split,
                             remove_query_doc, console, echo)
        runs[model_type] = run_from_scores(test_log, model_scores(result.model_dir, test_log),
                                           remove_query_doc=remove_query_doc)
    return runs


def _feedback_loop(settings: Settings, collection: Collection, index_name: str, embedder: Any, split: str,
                   train_split: str, runs: dict[str, RunDict], out: Path, console: Console, *,
                   loop_sessions: int, experiment_sessions: int, remove_query_doc: bool,
                   echo: Callable[[str], None]) -> None:
    from datetime import UTC, datetime

    from rich.table import Table

    from ltr.clicks.click_model import aggregate_clicks, click_stats_path, write_click_stats
    from ltr.clicks.feedback_loop import FeedbackLoop
    from ltr.clicks.pbm import DESIGN_EXAMINATION
    from ltr.clicks.training_set import build_click_training_set, feature_set, live_feature_meta, train_from_clicks
    from ltr.evaluation.learned import model_scores, run_from_scores
    from ltr.evaluation.metrics import evaluate_runs
    from ltr.experiments.credit import HEADLINE_RULE
    from ltr.experiments.report import render_report
    from ltr.experiments.stats import compute_stats
    from ltr.training.contract import ModelContract
    from ltr.training.feature_log import read_feature_log
    from ltr.training.registry import DEFAULT_VARIANT, ModelRegistry
    from ltr.training.train import TrainConfig

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    registry = ModelRegistry.from_settings(settings)
    with FeedbackLoop(settings, index_name, collection, embedder) as loop:
        users = settings.feedback.click_model
        console.print(f"endpoint at {loop.url}; events → {settings.feedback.events_index!r}; "
                      f"{loop_sessions} simulated searches of the {train_split} queries, clicks by {users} users "
                      "(feedback.click_model; ltr.clicks.user_models)")
        logging = loop.experiment(f"demo-logging-{stamp}", "ab", [("es", "es"), ("hybrid", "hybrid"), ("rrf", "rrf")])
        sim = loop.simulate(train_split, loop_sessions, users=200, seed=1)
        console.print(f"{sim.searches_ok} searches, {sim.clicks_accepted} clicks accepted, {sim.clicks_lost} lost")
        impressions, orphans = loop.impressions(logging.id)
        stats, pbm = aggregate_clicks(impressions, prior_weight=settings.feedback.ctr_prior_weight, index=index_name)
        write_click_stats(stats, click_stats_path(settings, index_name))
        table = Table(title=f"click model (EM): examination by rank, relative to rank 1 ({len(impressions)} "
                            f"impressions, {orphans} orphan clicks)")
        table.add_column("rank")
        table.add_column("fitted", justify="right")
        positional = users == "position-based"  # only then is there a true examination curve to show
        table.add_column("simulated" if positional else f"({users} users scan top-down: no fixed curve)",
                         justify="right")
        for rank, theta in sorted(pbm.examination.items())[:10]:
            true = DESIGN_EXAMINATION[rank - 1] / DESIGN_EXAMINATION[0] \
                if positional and rank <= len(DESIGN_EXAMINATION) else None
            table.add_row(str(rank), f"{theta:.3f}", "" if true is None else f"{true:.3f}")
        console.print(table)
        console.print(f"EM: {pbm.iterations} iterations ({'converged' if pbm.converged else 'not converged'}); "
                      f"{pbm.varied_pairs:.0%} of (query, doc) pairs were shown at 2+ ranks, the only evidence "
                      "that tells ranks apart (few clicks and little movement leave the top ranks unresolved)")

        training = build_click_training_set(
            impressions, policy="debiased", prior_weight=settings.feedback.ctr_prior_weight,
            feature_meta=live_feature_meta(settings, index_name, feature_set(impressions)[0]))
        trained = train_from_clicks(training, None, config=TrainConfig(),
                                    model_store=lambda model_id: registry.model_dir(index_name, model_id))
        test_log = read_feature_log(out / "feature-logs" / f"{split}.parquet")
        runs["clicks (no qrels)"] = run_from_scores(test_log, model_scores(trained.model_dir, test_log))
        qrels = collection.qrels(split)
        versus = evaluate_runs(qrels, {k: runs[k] for k in ("linear", "lightgbm", "clicks (no qrels)") if k in runs},
                               baseline="linear", metrics=("ndcg@10",))
        console.print(versus.table(title=f"a ranker trained from simulated clicks only ({trained.contract.model_id}) "
                                         f"on the {split} qrels"))
        # the click-trained ranker would serve the variant "clicks"; nothing later depends on it serving
        _gated_promotion(settings, collection, index_name, trained.contract.model_id, CLICKS_VARIANT, split,
                         remove_query_doc, console, echo)

        serving = registry.serving(index_name, DEFAULT_VARIANT)
        if serving:  # this run's LightGBM if the gate passed it, else whatever served before
            model_type = ModelContract.read(registry.model_dir(index_name, serving)).model_type
            challenger = (model_type, f"variant:{DEFAULT_VARIANT}")
            echo(f"interleaving BM25 order vs the model serving {index_name}: {serving}")
        else:
            challenger = ("linear", "hybrid")
            echo(f"no model serves {index_name} (the gate let none through): interleaving BM25 order vs "
                 "linear fusion instead")
        experiment = loop.experiment(f"demo-interleave-{stamp}", "interleave", [("bm25", "es"), challenger])
        loop.simulate(split, experiment_sessions, users=200, seed=2)
        ab_impressions, _ = loop.impressions(experiment.id)
        loop.stop_experiments()
    report = compute_stats(ab_impressions, experiment, headline=HEADLINE_RULE)
    html = render_report(report, out / "ab-report.html")
    echo(f"interleaving BM25 order vs {challenger[0]}: {report.verdict}")
    for method in report.methods:  # the same searches under every other credit rule (ltr.experiments.methods)
        if method.method != report.headline:
            echo(f"  {method.verdict}")
    echo(f"experiment report: {html}")


FUSIONS = ("es", "rrf", "linear")


def _gain_line(means: dict[str, dict[str, float]]) -> str:
    """The best run against BM25 and against the best fusion of the same run (the learned rankers' gain)."""
    base = means["bm25"]["ndcg@10"]
    best = max(means, key=lambda name: means[name]["ndcg@10"])
    line = (f"best NDCG@10: {best} {means[best]['ndcg@10']:.4f} vs BM25 {base:.4f} "
            f"({means[best]['ndcg@10'] - base:+.4f})")
    fusions = [name for name in FUSIONS if name in means]
    learned = [name for name in means if name not in FUSIONS and name not in ("bm25", "knn")]
    if fusions and learned:
        fusion = max(fusions, key=lambda name: means[name]["ndcg@10"])
        top = max(learned, key=lambda name: means[name]["ndcg@10"])
        line += (f"; gain over the best fusion: {top} {means[top]['ndcg@10']:.4f} vs {fusion} "
                 f"{means[fusion]['ndcg@10']:.4f} ({means[top]['ndcg@10'] - means[fusion]['ndcg@10']:+.4f})")
    return line
