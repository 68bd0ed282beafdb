"""Held-out judged queries of an index, for the promotion gate (``ltr.training.gate``), and the runs on them.

Judgments come from explicit qrels (a collection's split, or a judgments file whose query ids the
collection's queries file names) or from clicks (the index's impressions and clicks in the events
index, graded as ``train --from-events`` grades them; a query is its normalised text there). Queries the
model was trained on (``ltr.training.training_queries``) are left out, never judged on.

The runs are made by the code of ``hybridrank evaluate``: ``retrieve_windows`` + ``run_from_windows`` for
the baseline orders, a feature log of the same queries (``log_features``, the live reranker's features)
scored by the model (``model_scores`` + ``run_from_scores``) for the model.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from hybridrank.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hybridrank.config import Settings
    from ltr.evaluation.metrics import RunDict
    from ltr.training.contract import ModelContract


@dataclass(frozen=True)
class JudgedQueries:
    """Queries (id -> text) with graded labels, and where they came from."""

    source: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    collection: str | None = None  # the collection the ids belong to (None: click queries, keyed by text)
    split: str | None = None
    remove_query_doc: bool = False


@dataclass(frozen=True)
class QrelsHeldOut:
    """A collection's split (or a judgments file of its queries) as the held-out judgments."""

    collection: str  # a BEIR folder or beir:<name>
    split: str = "test"
    qrels_file: Path | None = None  # judgments instead of qrels/<split>.tsv (BEIR or TREC layout)
    limit: int | None = None  # the first N judged queries only
    remove_query_doc: bool = False  # the BEIR ArguAna convention

    def judged(self, settings: Settings, index: str) -> JudgedQueries:
        from ltr.evaluation.datasets import load_collection, read_qrels

        coll = load_collection(self.collection, home=settings.home)
        if self.qrels_file is not None:
            qrels = read_qrels(Path(self.qrels_file))
            unknown = [q for q in qrels if q not in coll.queries]
            if unknown:
                raise DataError(f"{self.qrels_file}: {len(unknown)} query id(s) not in {coll.name}'s queries "
                                f"file, e.g. {unknown[0]!r}")
            split, source = Path(self.qrels_file).name, f"{coll.name} queries judged in {self.qrels_file}"
        else:
            qrels, split, source = coll.qrels(self.split), self.split, f"{coll.name}:{self.split} qrels"
        qids = list(qrels)[: self.limit] if self.limit is not None else list(qrels)
        return JudgedQueries(source, {q: coll.queries[q] for q in qids}, {q: dict(qrels[q]) for q in qids},
                             coll.name, split, self.remove_query_doc)


@dataclass(frozen=True)
class ClickHeldOut:
    """Labels from the index's clicks in [since, until) (all logged events by default)."""

    since: datetime | None = None
    until: datetime | None = None
    labels: str = "debiased"

    def judged(self, settings: Settings, index: str) -> JudgedQueries:
        from ltr.clicks.click_model import load_clicked_impressions
        from ltr.clicks.pbm import fit_pbm
        from ltr.clicks.training_set import click_labels

        impressions, _ = load_clicked_impressions(settings, index, since=self.since, until=self.until)
        graded, _ = click_labels(impressions, fit_pbm(impressions).examination, policy=self.labels,
                                 prior_weight=settings.feedback.ctr_prior_weight)
        qrels: dict[str, dict[str, int]] = {}
        for (query, doc_id), grade in graded.items():
            qrels.setdefault(query, {})[doc_id] = grade
        # a query whose every shown document was clicked below the average rate tells no order apart
        qrels = {q: docs for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
        period = "".join(f" {word} {moment.isoformat()}" for word, moment in (("since", self.since),
                                                                              ("until", self.until)) if moment)
        return JudgedQueries(f"clicks on {index!r} in {settings.feedback.events_index!r}{period} "
                             f"({self.labels} labels)", {q: q for q in qrels}, qrels)


HeldOutSource = QrelsHeldOut | ClickHeldOut


def without_training_queries(judged: JudgedQueries, model_dir: Path, contract: ModelContract
                             ) -> tuple[JudgedQueries, int]:
    """``judged`` minus the queries the model was trained on, and how many those were.

    A model without a record of its training queries (trained before models kept one) is judged by its
    contract: held-out queries of the very collection and split it was trained on are all left out."""
    from ltr.training.training_queries import read_training_queries

    record = read_training_queries(model_dir)
    if record is not None:
        trained = {q for q, text in judged.queries.items() if record.contains(q, text, judged.collection)}
    else:
        spec = str(contract.training.get("collection") or "")
        same = judged.collection is not None and judged.collection in (spec, Path(spec).name)
        trained = set(judged.queries) if same and contract.training.get("split") == judged.split else set()
    if not trained:
        return judged, 0
    keep = [q for q in judged.queries if q not in trained]
    return replace(judged, queries={q: judged.queries[q] for q in keep},
                   qrels={q: judged.qrels[q] for q in keep}), len(trained)


def gate_runs(settings: Settings, index: str, model_dir: Path, judged: JudgedQueries, baselines: Sequence[str],
              *, window: int | None = None) -> tuple[RunDict, dict[str, RunDict]]:
    """(the model's run, each baseline order's run) on the judged queries of ``index``."""
    from connector.client import make_client
    from connector.embedding.embedder import embedder_from_settings
    from connector.retrieval.retriever import Retriever
    from features.pipeline import FeaturePipeline
    from ltr.evaluation.judgments import Judgments
    from ltr.evaluation.learned import model_scores, run_from_scores
    from ltr.evaluation.metrics import retrieve_windows, run_from_windows
    from ltr.training.feature_log import log_features, read_feature_log

    config = settings.index(index)
    retriever = Retriever(make_client(settings), index, config, embedder_from_settings(settings))
    windows = retrieve_windows(retriever, judged.queries, list(baselines), window=window)
    baseline_runs = {mode: run_from_windows(windows[mode], remove_query_doc=judged.remove_query_doc)
                     for mode in baselines}
    with tempfile.TemporaryDirectory(prefix="hybridrank-gate-") as tmp:
        log_features(retriever, FeaturePipeline.from_config(config), judged.queries,
                     Judgments(judged.qrels, name=judged.source), Path(tmp) / "held-out.parquet",
                     request_time=datetime.now(UTC), window=window, metadata={"held_out": judged.source})
        log = read_feature_log(Path(tmp) / "held-out.parquet")
    model_run = run_from_scores(log, model_scores(model_dir, log), remove_query_doc=judged.remove_query_doc)
    return model_run, baseline_runs
