"""Which queries a model was trained on, kept in its directory so the promotion gate never judges it on them.

``training-queries.json`` holds ``by`` ("id" or "text"), the collection and the queries. A model trained
on a collection's judgments is recorded by query id (with the collection's folder, so their texts can be
looked up); one trained on clicks (``ltr.clicks.training_set``) by normalised query text, the key clicks
are counted under. Validation queries count as training queries: they chose the number of trees (and a
refit trains on them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybridrank.errors import ModelError

if TYPE_CHECKING:
    from ltr.training.feature_log import FeatureLog

TRAINING_QUERIES_FILE = "training-queries.json"
EVENTS_COLLECTION = "events"  # ltr.clicks.training_set names a click log's collection so


@dataclass(frozen=True)
class TrainingQueries:
    by: str  # "id" or "text"
    collection: str | None
    collection_path: str | None
    queries: frozenset[str]

    def texts(self) -> frozenset[str] | None:
        """The normalised texts of the training queries; None when they cannot be known (ids of a
        collection whose folder is gone)."""
        from ltr.clicks.pbm import normalize_query

        if self.by == "text":
            return self.queries
        if not self.collection_path or not Path(self.collection_path).is_dir():
            return None
        from ltr.evaluation.datasets import open_folder

        texts = open_folder(self.collection_path).queries
        return frozenset(normalize_query(texts[q]) for q in self.queries if q in texts)

    def contains(self, qid: str, text: str, collection: str | None) -> bool:
        """Whether a query (its id in ``collection``, its text) is one the model was trained on."""
        from ltr.clicks.pbm import normalize_query

        if self.by == "id" and collection is not None and collection == self.collection and qid in self.queries:
            return True
        texts = self.texts()
        return texts is not None and normalize_query(text) in texts


def training_queries_of(log: FeatureLog) -> TrainingQueries:
    """The record of ``log``'s queries: by normalised text for a click log (qids ``<period>:<query>``),
    else by id."""
    meta = log.metadata
    qids = {str(q) for q in log.qids}
    if meta.get("collection") == EVENTS_COLLECTION:
        return TrainingQueries("text", EVENTS_COLLECTION, None, frozenset(q.split(":", 1)[-1] for q in qids))
    spec = meta.get("collection_path") or meta.get("collection")
    path = str(Path(spec).resolve()) if spec and Path(str(spec)).is_dir() else None
    name = meta.get("collection_name") or (Path(path).name if path else meta.get("collection"))
    return TrainingQueries("id", name, path, frozenset(qids))


def write_training_queries(model_dir: Path, log: FeatureLog) -> None:
    record = training_queries_of(log)
    (Path(model_dir) / TRAINING_QUERIES_FILE).write_text(json.dumps({
        "format_version": 1, "by": record.by, "collection": record.collection,
        "collection_path": record.collection_path, "queries": sorted(record.queries)}, indent=1) + "\n",
        encoding="utf-8")


def read_training_queries(model_dir: Path) -> TrainingQueries | None:
    """The record, or None for a model trained before models kept one."""
    path = Path(model_dir) / TRAINING_QUERIES_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return TrainingQueries(str(raw["by"]), raw.get("collection"), raw.get("collection_path"),
                               frozenset(str(q) for q in raw["queries"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is unreadable: {exc}") from exc
