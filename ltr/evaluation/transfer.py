"""Ranking quality across collections: each collection's own protocol, and models carried between them.

A collection is evaluated by its protocol: train split -> test split where it has a train split
(SciFact), else k-fold cross-validation by query over its judged split (ArguAna, Cranfield). Every
run is scored from feature logs (``ltr.training.feature_log``, the serving code), the fusions from the
same logs' ``fused_linear`` / ``fused_rrf`` columns, metrics and paired tests by ranx
(``ltr.evaluation.metrics.evaluate_runs``), the learned ranker tested against the best fusion.

The transfer table trains one model per collection (on its train split, or on all its judged queries)
and scores the evaluation queries of every collection with it unchanged.
``bench/ltr_transfer.py`` is the command line over these functions.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridrank.errors import DataError

if TYPE_CHECKING:
    from hybridrank.config import Settings
    from ltr.evaluation.metrics import EvalReport, RunDict
    from ltr.training.feature_log import FeatureLog
    from ltr.training.train import TrainConfig

FUSIONS = ("fused_linear", "fused_rrf")
MODEL_RUN = "model"


@dataclass(frozen=True)
class CollectionSpec:
    """How one collection is evaluated: ``train_split`` set -> train/test, else ``cv_folds`` CV over ``split``."""

    name: str
    path: str
    index: str
    split: str = "test"
    train_split: str | None = None
    remove_query_doc: bool = False
    cv_folds: int = 5


def shared_specs(datasets_dir: str | Path) -> dict[str, CollectionSpec]:
    """The three judged collections of ``../shared/datasets`` as issue 14 evaluates them."""
    root = Path(datasets_dir)
    return {
        "scifact": CollectionSpec("scifact", str(root / "scifact"), "scifact", train_split="train"),
        "arguana": CollectionSpec("arguana", str(root / "arguana"), "arguana", remove_query_doc=True),
        "cranfield": CollectionSpec("cranfield", str(root / "cranfield"), "cranfield"),
    }


@dataclass
class CollectionLogs:
    """A collection's feature logs: ``train`` (None for CV collections) and ``test``, and the judgments."""

    spec: CollectionSpec
    train: FeatureLog | None
    test: FeatureLog
    qrels: dict[str, dict[str, int]]

    @property
    def train_log(self) -> FeatureLog:
        """What a model for transfer learns from: the train split, else every judged query."""
        return self.train if self.train is not None else self.test


def log_collection(settings: Settings, spec: CollectionSpec, out_dir: Path, *, request_time: datetime,
                   features: Sequence[str] | None = None, reuse: bool = True, drop_query_doc: bool = False,
                   say: Callable[[str], None] = print) -> CollectionLogs:
    """Feature-log the splits the protocol needs (``<out_dir>/<name>-<split>.parquet``); an existing log with
    the same feature configuration is reused. ``drop_query_doc`` (with the spec's ``remove_query_doc``):
    the query's own document leaves the window before features (``log_features``)."""
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from features.pipeline import FeaturePipeline
    from ltr.evaluation.datasets import load_collection
    from ltr.evaluation.judgments import Judgments
    from ltr.training.feature_log import log_features, read_feature_log

    collection = load_collection(spec.path, home=settings.home)
    config = settings.index(spec.index)
    if features:
        config = config.model_copy(update={"features": list(features)})
    pipeline = FeaturePipeline.from_config(config)
    retriever: Retriever | None = None
    logs: dict[str, FeatureLog] = {}
    drop = drop_query_doc and spec.remove_query_doc
    for split in [s for s in (spec.train_split, spec.split) if s]:
        out = out_dir / f"{spec.name}{'-nodoc' if drop else ''}-{split}.parquet"
        if reuse and out.exists():
            log = read_feature_log(out)
            if log.metadata.get("feature_config_hash") == pipeline.config_hash():
                logs[split] = log
                continue
        if retriever is None:
            retriever = Retriever(make_client(settings), spec.index, config, embedder_from_settings(settings))
        queries = collection.split_queries(split)
        say(f"{spec.name}/{split}: logging {len(queries)} queries")
        judgments = Judgments(collection.qrels(split), name=f"{collection.name}:{split}")
        log_features(retriever, pipeline, queries, judgments, out, request_time=request_time, drop_query_doc=drop,
                     metadata={"collection": collection.name, "collection_name": collection.name, "split": split})
        logs[split] = read_feature_log(out)
    qrels = collection.qrels(spec.split)
    test = logs[spec.split]
    qrels = {q: qrels[q] for q in dict.fromkeys(str(x) for x in test.qids) if q in qrels}
    return CollectionLogs(spec, logs.get(spec.train_split or ""), test, qrels)


def select_features(log: FeatureLog, names: Sequence[str]) -> FeatureLog:
    """The log restricted to ``names`` (in that order); ``DataError`` naming a feature it lacks."""
    missing = [n for n in names if n not in log.feature_names]
    if missing:
        raise DataError(f"the feature log has no column(s) {', '.join(missing)}")
    cols = [log.feature_names.index(n) for n in names]
    meta = {**log.metadata, "feature_names": list(names)}
    params = [p for p in meta.get("feature_params", []) if p.get("name") in set(names)]
    meta["feature_params"] = sorted(params, key=lambda p: list(names).index(p["name"]))
    return replace(log, matrix=log.matrix[:, cols], feature_names=list(names), metadata=meta)


def _column_run(log: FeatureLog, name: str, remove_query_doc: bool) -> RunDict:
    from ltr.evaluation.learned import run_from_scores

    scores = log.matrix[:, log.feature_names.index(name)]
    return run_from_scores(log, np.where(np.isnan(scores), -np.inf, scores), remove_query_doc=remove_query_doc)


def fusion_runs(log: FeatureLog, *, remove_query_doc: bool = False) -> dict[str, RunDict]:
    """The linear and RRF fusions of the logged windows (their feature columns), as runs."""
    missing = [n for n in FUSIONS if n not in log.feature_names]
    if missing:
        raise DataError(f"the feature log has no {', '.join(missing)} column: fusions cannot be scored")
    return {name.removeprefix("fused_"): _column_run(log, name, remove_query_doc) for name in FUSIONS}


def protocol_run(logs: CollectionLogs, config: TrainConfig, features: Sequence[str] | None = None) -> RunDict:
    """The learned ranker's run on the collection's evaluation queries, by its protocol."""
    from ltr.evaluation.learned import cross_validated_run, model_scores, run_from_scores
    from ltr.training.train import train_model

    spec = logs.spec
    test = select_features(logs.test, features) if features else logs.test
    if logs.train is None:
        return cross_validated_run(test, folds=spec.cv_folds, config=config,
                                   remove_query_doc=spec.remove_query_doc, seed=config.seed)
    train = select_features(logs.train, features) if features else logs.train
    with tempfile.TemporaryDirectory(prefix="hybridrank-protocol-") as tmp:
        result = train_model(train, Path(tmp) / "model", config=config)
        scores = model_scores(result.model_dir, test)
    return run_from_scores(test, scores, remove_query_doc=spec.remove_query_doc)


def best_fusion(report: EvalReport) -> str:
    """The fusion with the higher mean NDCG@10 in ``report``."""
    return max(("linear", "rrf"), key=lambda r: report.means[r]["ndcg@10"])


def protocol_report(logs: CollectionLogs, config: TrainConfig, features: Sequence[str] | None = None,
                    *, extra_runs: Mapping[str, RunDict] | None = None) -> EvalReport:
    """Model and both fusions on the evaluation queries; p-values against the best fusion."""
    from ltr.evaluation.metrics import evaluate_runs

    runs = fusion_runs(logs.test, remove_query_doc=logs.spec.remove_query_doc)
    runs[MODEL_RUN] = protocol_run(logs, config, features)
    runs.update(extra_runs or {})
    first = evaluate_runs(logs.qrels, {k: runs[k] for k in ("linear", "rrf")}, baseline="linear",
                          metrics=("ndcg@10",))
    return evaluate_runs(logs.qrels, runs, baseline=best_fusion(first), metrics=("ndcg@10", "mrr@10"))


def summary(report: EvalReport) -> dict[str, Any]:
    """The numbers a results table needs: NDCG@10 of the model and fusions, delta and p vs the best fusion."""
    best = report.baseline
    model = report.means[MODEL_RUN]["ndcg@10"]
    wtl = report.win_tie_loss[MODEL_RUN]["ndcg@10"]
    return {"model": round(model, 4), "linear": round(report.means["linear"]["ndcg@10"], 4),
            "rrf": round(report.means["rrf"]["ndcg@10"], 4), "best_fusion": best,
            "delta": round(model - report.means[best]["ndcg@10"], 4),
            "p": float(f"{report.p_values[MODEL_RUN]['ndcg@10']:.3g}"),
            "wtl": f"{wtl['W']}/{wtl['T']}/{wtl['L']}"}


def transfer_table(collections: Mapping[str, CollectionLogs], config: TrainConfig,
                   features: Sequence[str] | None = None, *, own: Mapping[str, dict[str, Any]] | None = None,
                   say: Callable[[str], None] = print) -> dict[str, dict[str, dict[str, Any]]]:
    """source -> target -> numbers: a model trained on ``source``'s training queries scores ``target``'s
    evaluation queries unchanged. The diagonal is the source's own protocol (train->test or CV): taken
    from ``own`` (``summary`` rows of the same configuration) when given (left out if ``own`` lacks it),
    else computed."""
    from ltr.evaluation.learned import model_scores, run_from_scores
    from ltr.evaluation.metrics import evaluate_runs
    from ltr.training.train import train_model

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for source, src_logs in collections.items():
        table[source] = {}
        with tempfile.TemporaryDirectory(prefix="hybridrank-transfer-") as tmp:
            train = select_features(src_logs.train_log, features) if features else src_logs.train_log
            say(f"transfer: training on {source}")
            model_dir = train_model(train, Path(tmp) / "model", config=config).model_dir
            for target, tgt_logs in collections.items():
                if target == source and own is not None:  # the diagonal from ``own``, or left out
                    if source in own:
                        row = dict(own[source])
                        row["delta_vs_linear"] = round(row["model"] - row["linear"], 4)
                        table[source][target] = row
                    continue
                if target == source:
                    report = protocol_report(tgt_logs, config, features)
                else:
                    test = select_features(tgt_logs.test, features) if features else tgt_logs.test
                    runs = fusion_runs(tgt_logs.test, remove_query_doc=tgt_logs.spec.remove_query_doc)
                    runs[MODEL_RUN] = run_from_scores(test, model_scores(model_dir, test),
                                                      remove_query_doc=tgt_logs.spec.remove_query_doc)
                    report = evaluate_runs(tgt_logs.qrels, runs, baseline="linear", metrics=("ndcg@10", "mrr@10"))
                row = summary(report)
                row["delta_vs_linear"] = round(row["model"] - row["linear"], 4)
                table[source][target] = row
                say(f"  {source} -> {target}: {row}")
    return table
